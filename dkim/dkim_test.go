package dkim

import (
	"errors"
	"strings"
	"testing"
)

// rfc6376Key is the example key of RFC 6376 Appendix C
// (brisbane._domainkey.example.com), 1024-bit RSA in SubjectPublicKeyInfo.
const rfc6376Key = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB"

// rfc8463Key is the Ed25519 example key of RFC 8463 Appendix A.2
// (brisbane._domainkey.football.example.com).
const rfc8463Key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		bits     int
		keyType  KeyType
		problems []string // substrings, in order; nil: must parse
	}{
		{"RFC 6376 Appendix C", "v=DKIM1; p=" + rfc6376Key, 1024, RSA, nil},
		{"RFC 8463 Appendix A.2", "v=DKIM1; k=ed25519; p=" + rfc8463Key, 256, Ed25519, nil},
		{"SubjectPublicKeyInfo 2048", "v=DKIM1; k=rsa; p=" + keySPKI2048, 2048, RSA, nil},
		{"RSAPublicKey 2048", "v=DKIM1; k=rsa; p=" + keyPKCS12048, 2048, RSA, nil},
		{"RSAPublicKey 512", "p=" + keyPKCS1512, 512, RSA, nil},
		{"SubjectPublicKeyInfo 512", "p=" + keySPKI512, 512, RSA, nil},
		{"no v, all tags, spacing and folding", " k = RSA ; h = sha1 : SHA256;s=email:*; t=y:s ; n=a note; x_1=y;\r\n p=" + keySPKI1024[:50] + " \r\n\t" + keySPKI1024[50:] + " ;", 1024, RSA, nil},
		{"revoked", "v=DKIM1; p=", 0, RSA, nil},
		{"revoked ed25519", "v=DKIM1; k=ed25519; p=", 0, Ed25519, nil},
		{"unknown hash and flag ignored", "h=sha512; t=z; p=" + keySPKI2048, 2048, RSA, nil},

		{"v not first", "k=rsa; v=DKIM1; p=" + keySPKI2048, 0, "", []string{"v=DKIM1 must be the first tag"}},
		{"wrong version", "v=DKIM2; p=" + keySPKI2048, 0, "", []string{"the version must be DKIM1"}},
		{"missing p", "v=DKIM1; k=rsa", 0, "", []string{"p= tag (public key) is missing"}},
		{"duplicate tag", "v=DKIM1; p=; p=" + keySPKI2048, 0, "", []string{"p appears more than once"}},
		{"unknown key type", "v=DKIM1; k=dsa; p=" + keySPKI2048, 0, "", []string{"k=dsa: unknown key type"}},
		{"truncated key", "v=DKIM1; p=MIGfMA0G", 0, "", []string{"not an RSA public key"}},
		{"bad base64", "v=DKIM1; p=MIGf*A0G", 0, "", []string{"not valid base64"}},
		{"ed25519 as SPKI", "v=DKIM1; k=ed25519; p=" + keyEdSPKI, 0, "", []string{"raw 32-byte key"}},
		{"ed25519 key without k", "v=DKIM1; p=" + keyEdSPKI, 0, "", []string{"add k=ed25519"}},
		{"rsa key as ed25519", "v=DKIM1; k=ed25519; p=" + keySPKI2048, 0, "", []string{"an Ed25519 key is 32"}},
		{"empty h", "v=DKIM1; h=; p=" + keySPKI2048, 0, "", []string{`h=: "" is not a valid list item`}},
		{"bad tag name", "v=DKIM1; 1x=2; p=" + keySPKI2048, 0, "", []string{`"1x" is not a valid tag name`}},
		{"no equals sign", "v=DKIM1; junk; p=" + keySPKI2048, 0, "", []string{`"junk" is not a tag=value pair`}},
		{"bad character", "v=DKIM1; n=caf\xc3\xa9; p=" + keySPKI2048, 0, "", []string{"is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if tt.problems == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if r.Bits != tt.bits || r.KeyType != tt.keyType {
					t.Errorf("got %s key of %d bits, want %s of %d", r.KeyType, r.Bits, tt.keyType, tt.bits)
				}
				if r.Revoked() != (tt.bits == 0) {
					t.Errorf("Revoked() = %v", r.Revoked())
				}
				return
			}
			se, ok := errors.AsType[*SyntaxError](err)
			if r != nil || !ok || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse = %v, %v; want nil and a *SyntaxError", r, err)
			}
			all := strings.Join(se.Problems, " | ")
			rest := all
			for _, p := range tt.problems {
				i := strings.Index(rest, p)
				if i < 0 {
					t.Errorf("problems %q lack %q (in order)", all, p)
					break
				}
				rest = rest[i+len(p):]
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	r, err := Parse("k=RSA; h=sha1:SHA256; s=email:*; t=y:s; n=a note; x_1=y; p=" + keySPKI2048)
	if err != nil {
		t.Fatal(err)
	}
	got := r.String()
	want := "h=sha1:sha256; s=email:*; t=y:s; n=a note; x_1=y; p=" + keySPKI2048
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if !r.Testing() || !r.AllowsSHA256() {
		t.Errorf("Testing() = %v, AllowsSHA256() = %v; want true, true", r.Testing(), r.AllowsSHA256())
	}
	r, _ = Parse("h=sha1; p=" + keySPKI2048)
	if r.AllowsSHA256() || r.Testing() {
		t.Errorf("h=sha1: AllowsSHA256() = %v, Testing() = %v; want false, false", r.AllowsSHA256(), r.Testing())
	}
}

func TestIsKeyRecord(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"v=DKIM1; p=abc", true},
		{"v=DKIM1", true}, // a key record lacking p: dkim-syntax, not ignored
		{"k=rsa; p=abc", true},
		{"p=", true},
		{"v=spf1 include:_spf.example.com -all", false},
		{"google-site-verification=abc", false},
		{"v=DKIM2; p=abc", false},
		{"", false},
	} {
		if got := IsKeyRecord(tt.in); got != tt.want {
			t.Errorf("IsKeyRecord(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
