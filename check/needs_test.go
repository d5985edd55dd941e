package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// factOfField is the Fact each Facts field belongs to (Domain, set
// before any gatherer starts, belongs to none).
var factOfField = map[string]Fact{
	"Domain": 0,
	"Plan":   FactPlan, "PlanErr": FactPlan,
	"Nameservers": FactNameservers, "NameserversErr": FactNameservers,
	"PTR": FactPTR,
	"SPF": FactSPF, "SPFErr": FactSPF,
	"DMARC": FactDMARC, "DMARCErr": FactDMARC,
	"DKIM": FactDKIM, "DKIMErr": FactDKIM,
	"MTASTS": FactMTASTS, "MTASTSErr": FactMTASTS,
	"TLSRPT": FactTLSRPT, "TLSRPTErr": FactTLSRPT,
	"DANE": FactDANE, "DANEErrs": FactDANE,
	"DNSBL": FactDNSBL, "DNSBLErr": FactDNSBL,
	"SMTP": FactSMTP, "ProbedAt": FactSMTP,
}

// TestFactsCovered: every Facts field belongs to a Fact, and only copies
// the fields of the facts it is asked for.
func TestFactsCovered(t *testing.T) {
	ft := reflect.TypeFor[Facts]()
	for i := range ft.NumField() {
		name := ft.Field(i).Name
		fact, ok := factOfField[name]
		if !ok {
			t.Errorf("Facts.%s belongs to no Fact: add it to factOfField, and to Facts.only", name)
			continue
		}
		// A Facts with every field set: only(fact) keeps this one
		// exactly when it is Domain or of fact.
		full := reflect.New(ft).Elem()
		for j := range ft.NumField() {
			full.Field(j).Set(nonZero(t, ft.Field(j).Type))
		}
		f := full.Addr().Interface().(*Facts)
		for _, need := range []Fact{fact, allFacts &^ fact} {
			kept := !reflect.ValueOf(f.only(need, new(Facts))).Elem().Field(i).IsZero()
			if want := fact == 0 || need&fact != 0; kept != want {
				t.Errorf("only(%b) keeps Facts.%s: %v, want %v", need, name, kept, want)
			}
		}
	}
	if n := len(factsOf(allFacts)); n != factCount {
		t.Errorf("allFacts has %d facts, factCount says %d", n, factCount)
	}
}

// nonZero returns a value of type t that is not zero.
func nonZero(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(typ.Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(typ, 1, 1))
	case reflect.String:
		v.SetString("x")
	case reflect.Interface:
		v.Set(reflect.ValueOf(os.ErrNotExist))
	case reflect.Struct: // time.Time
		v.Set(reflect.ValueOf(time.Unix(1, 0)))
	default:
		t.Fatalf("no non-zero value for %s", typ)
	}
	return v
}

// factsOf splits a set into its facts.
func factsOf(set Fact) []Fact {
	var out []Fact
	for f := Fact(1); f <= set && f != 0; f <<= 1 {
		if set&f != 0 {
			out = append(out, f)
		}
	}
	return out
}

// TestNeedsDeclared reads the package's source: every Facts field a
// check's judge reads, itself or through the functions and methods it
// calls, is of a fact in its Needs, and every fact in its Needs is read.
// A judge that read an undeclared fact could be judged before that fact
// is gathered (AuditEach), and would see it zero (Facts.only); one that
// declared a fact it does not read would wait for it for nothing.
func TestNeedsDeclared(t *testing.T) {
	funcs := packageFuncs(t)
	for _, c := range Checks() {
		name := runtime.FuncForPC(reflect.ValueOf(c.Judge).Pointer()).Name()
		name = name[strings.LastIndexByte(name, '.')+1:]
		decl, ok := funcs[name]
		if !ok {
			t.Errorf("%s: judge %s not found in the package's source", c.Area, name)
			continue
		}
		var read Fact
		factsRead(decl, funcs, map[*ast.FuncDecl]bool{}, &read)
		if read != c.Needs {
			t.Errorf("%s: %s reads facts %b, Needs declares %b", c.Area, name, read, c.Needs)
		}
	}
}

// packageFuncs parses the package's non-test files: functions by name,
// methods of Facts as "Facts.name".
func packageFuncs(t *testing.T) map[string]*ast.FuncDecl {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	funcs := map[string]*ast.FuncDecl{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			key := fd.Name.Name
			if fd.Recv != nil {
				key = recvType(fd.Recv.List[0].Type) + "." + key
			}
			funcs[key] = fd
		}
	}
	return funcs
}

func recvType(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// factsRead adds to read the facts fd reads through its *Facts
// parameters and receiver, and through the package functions it calls.
func factsRead(fd *ast.FuncDecl, funcs map[string]*ast.FuncDecl, seen map[*ast.FuncDecl]bool, read *Fact) {
	if seen[fd] {
		return
	}
	seen[fd] = true
	vars := map[string]bool{}
	var fields []*ast.Field
	if fd.Recv != nil {
		fields = append(fields, fd.Recv.List...)
	}
	fields = append(fields, fd.Type.Params.List...)
	for _, p := range fields {
		if s, ok := p.Type.(*ast.StarExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == "Facts" {
				for _, n := range p.Names {
					vars[n.Name] = true
				}
			}
		}
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && vars[id.Name] {
				if fact, ok := factOfField[n.Sel.Name]; ok {
					*read |= fact
				} else if m, ok := funcs["Facts."+n.Sel.Name]; ok {
					factsRead(m, funcs, seen, read)
				}
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok {
				if callee, ok := funcs[id.Name]; ok && callee.Recv == nil {
					factsRead(callee, funcs, seen, read)
				}
			}
		}
		return true
	})
}

// TestJudgeAsFactsArrive feeds the facts of real audits to one judging,
// one fact at a time in many orders, and checks that each area is decided
// exactly when its facts are all in (and the plan, unless it is judged
// without the domain), never before: the routing area right after the
// plan, PTR not before the plan, SPF not before the plan either (it says
// whether the domain exists). The report is Judge's, whatever the order.
func TestJudgeAsFactsArrive(t *testing.T) {
	text, err := os.ReadFile("../examples/example.zone")
	if err != nil {
		t.Fatal(err)
	}
	reverse, err := os.ReadFile("../examples/reverse.zone")
	if err != nil {
		t.Fatal(err)
	}
	z, err := resolve.ParseZones(strings.NewReader(string(text)+"\n"+string(reverse)), "examples")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &Auditor{Resolver: r, Planner: &route.Planner{Resolver: r, Seed: 1, HasSeed: true}, SkipReason: "offline"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []string{"good.example", "tiers.example", "nosuch.example"} {
		f := a.Gather(t.Context(), dnsname.MustParse(d))
		want := Judge(f, a.skipped())
		for range 20 {
			order := factsOf(allFacts)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			step := -1                        // the fact being added; -1 while newJudging runs
			emitted := map[finding.Area]int{} // the step at which each area was emitted
			j := newJudging(f, a.skipped(), func(p Progress) {
				if _, twice := emitted[p.Area]; twice {
					t.Errorf("%s: %s emitted twice", d, p.Area)
				}
				emitted[p.Area] = step
				if (p.Plan != nil) != (p.Area == finding.AreaRouting) {
					t.Errorf("%s: %s event with plan %v", d, p.Area, p.Plan != nil)
				}
			})
			var have Fact
			for i, fact := range order {
				step, have = i, have|fact
				j.judgeReady(have)
			}
			if got := j.report(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s, facts in order %v: report differs from Judge's", d, order)
			}
			for _, c := range Checks() {
				at, ok := emitted[c.Area]
				if !ok {
					continue
				}
				// The step at which the area's facts are all in: the
				// Auditor's own skips need none.
				need := c.Needs
				if !c.WithoutDomain {
					need |= FactPlan
				}
				wantAt := -1
				if !isSkippedByAuditor(a, c.Area) {
					var in Fact
					for i, fact := range order {
						if in |= fact; in&need == need {
							wantAt = i
							break
						}
					}
				}
				if at != wantAt {
					t.Errorf("%s: %s (needs %b) emitted at step %d of %v, want %d", d, c.Area, need, at, order, wantAt)
				}
			}
		}
	}
}

func isSkippedByAuditor(a *Auditor, area finding.Area) bool {
	for _, s := range a.skipped() {
		if s.Area == area {
			return true
		}
	}
	return false
}
