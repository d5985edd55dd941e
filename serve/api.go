package serve

import "net/http"

// The API handlers; each body is the object the CLI prints with --json.

func (s *Server) apiRoute(w http.ResponseWriter, r *http.Request)       { notYet(w, r) }
func (s *Server) apiCheck(w http.ResponseWriter, r *http.Request)       { notYet(w, r) }
func (s *Server) apiCheckEvents(w http.ResponseWriter, r *http.Request) { notYet(w, r) }
func (s *Server) apiProbe(w http.ResponseWriter, r *http.Request)       { notYet(w, r) }
func (s *Server) apiSPF(w http.ResponseWriter, r *http.Request)         { notYet(w, r) }
func (s *Server) apiScan(w http.ResponseWriter, r *http.Request)        { notYet(w, r) }
func (s *Server) apiOpenAPI(w http.ResponseWriter, r *http.Request)     { notYet(w, r) }

func notYet(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, http.StatusNotImplemented, "not built yet", 0)
}
