package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"xueliang/index"
)

// NodeRegistry is the cluster's node registry (*index.DB in cluster mode).
type NodeRegistry interface {
	Nodes(ctx context.Context, live time.Duration) ([]index.Node, error)
	SetNodeDraining(ctx context.Context, id string, draining bool) error
}

// nodeLiveWindow: a node whose last heartbeat is older is reported not
// live (nodes heartbeat every lease_ttl/5).
const nodeLiveWindow = 15 * time.Second

func (s *Server) nodeRoutes() []route {
	return []route{
		{Route{"GET", "/api/v1/nodes", ActNodeRead}, s.listNodes},
		{Route{"PUT", "/api/v1/nodes/{id}/drain", ActNodeAdmin}, s.putNodeDrain},
	}
}

// Node is one node of GET /api/v1/nodes (the CLI decodes it too).
type Node struct {
	ID           string    `json:"id"`
	AdvertiseURL string    `json:"advertise_url"`
	Version      string    `json:"version"`
	Cameras      int       `json:"cameras"`
	Capacity     int       `json:"capacity"`
	Weight       float64   `json:"weight"`
	Draining     bool      `json:"draining"`
	Live         bool      `json:"live"`
	Started      time.Time `json:"started"`
	Heartbeat    time.Time `json:"heartbeat"`
}

// NodeList is the body of GET /api/v1/nodes.
type NodeList struct {
	Nodes []Node `json:"nodes"`
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if s.Nodes == nil {
		writeError(w, http.StatusNotImplemented, "not a cluster node (cluster.enabled is false)")
		return
	}
	nodes, err := s.Nodes.Nodes(r.Context(), nodeLiveWindow)
	if err != nil {
		s.internal(w, r, "list nodes", err)
		return
	}
	out := NodeList{Nodes: make([]Node, 0, len(nodes))}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, Node{ID: n.ID, AdvertiseURL: n.AdvertiseURL, Version: n.Version, Cameras: n.Cameras,
			Capacity: n.Capacity, Weight: n.Weight, Draining: n.Draining, Live: n.Live,
			Started: n.Started.UTC(), Heartbeat: n.Heartbeat.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// putNodeDrain sets a node's draining flag ({"draining": true|false}): a
// draining node stops its pullers, releases its leases for the others to
// claim, and claims none until undrained.
func (s *Server) putNodeDrain(w http.ResponseWriter, r *http.Request) {
	if s.Nodes == nil {
		writeError(w, http.StatusNotImplemented, "not a cluster node (cluster.enabled is false)")
		return
	}
	var in struct {
		Draining *bool `json:"draining"`
	}
	if !readBody(w, r, &in) {
		return
	}
	if in.Draining == nil {
		writeError(w, http.StatusBadRequest, "draining (true or false) is required")
		return
	}
	id := r.PathValue("id")
	err := s.Nodes.SetNodeDraining(r.Context(), id, *in.Draining)
	if errors.Is(err, index.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no node %s", id)
		return
	}
	if err != nil {
		s.internal(w, r, "drain node", err)
		return
	}
	noteAudit(r.Context(), "node %q draining=%t", id, *in.Draining)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "draining": *in.Draining})
}
