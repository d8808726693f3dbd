package api

// registryRoutes serves the camera registry and sites.
func (s *Server) registryRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/cameras", ActCameraRead}, s.cameras},
	}
}
