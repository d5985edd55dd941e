package serve

import "net/http"

// The web page: templates and assets in web/.

func (s *Server) pageHome(w http.ResponseWriter, r *http.Request)   { notYet(w, r) }
func (s *Server) pageDomain(w http.ResponseWriter, r *http.Request) { notYet(w, r) }
func (s *Server) pageStatic(w http.ResponseWriter, r *http.Request) { notYet(w, r) }
