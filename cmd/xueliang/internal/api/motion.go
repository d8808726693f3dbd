package api

// motionRoutes serves motion search.
func (s *Server) motionRoutes() []route { return nil }
