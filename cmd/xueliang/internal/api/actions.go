package api

// Action names what a route does. Authorization maps roles to actions
// (auth.go); the audit log records the action of every request.
type Action string

// Actions. A route has exactly one.
const (
	ActHealth      Action = "health"       // GET /healthz: anonymous
	ActReady       Action = "ready"        // GET /readyz
	ActMetrics     Action = "metrics"      // GET /metrics (scrape token)
	ActCameraRead  Action = "camera.read"  // list/get cameras, sites
	ActCameraWrite Action = "camera.write" // create/update/delete/import cameras
	ActProbe       Action = "probe"        // POST /api/v1/probe
	ActArchiveRead Action = "archive.read" // timelines, motion search, camera events
	ActReplay      Action = "replay"       // replay.mp4 and exports
	ActLive        Action = "live"         // live view and its tickets
	ActAuditRead   Action = "audit.read"   // query the audit log
	ActUserAdmin   Action = "user.admin"   // users, roles, other users' tokens
	ActSession     Action = "session"      // login (anonymous), logout, own identity and tokens
	// Retention and evidence (retention.go).
	ActEvidenceLock   Action = "evidence.lock"   // create an evidence lock (operator, admin)
	ActEvidenceRead   Action = "evidence.read"   // list evidence locks
	ActEvidenceUnlock Action = "evidence.unlock" // end an evidence lock (admin only)
	ActRetentionWrite Action = "retention.write" // camera and township retention overrides (admin only)
	ActComplianceRead Action = "compliance.read" // township compliance report (auditor, operator, admin)
	// Cluster nodes (nodes.go).
	ActNodeRead  Action = "node.read"  // list the cluster's nodes (auditor, operator, admin)
	ActNodeAdmin Action = "node.admin" // drain or undrain a node (admin only)
)
