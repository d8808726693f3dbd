package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"xueliang/cmd/xueliang/internal/cluster"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/cmd/xueliang/internal/peer"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
	"xueliang/ingest"
	"xueliang/ingest/segmenter"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// Cluster mode (cluster.enabled): the wiring between the camera registry,
// the node's leases (cluster.Member) and the ingest manager. Every camera
// of the registry is in the lease table; the manager runs the pullers of
// the cameras this node holds, each writing its segment rows with the
// lease's epoch (fencedIndex).

// clusterCameras feeds the manager the registry's cameras this node holds
// a lease on, each with its epoch (a new epoch restarts the puller).
type clusterCameras struct {
	leases interface {
		SetLeaseCameras(ctx context.Context, ids []string) (added, removed int, err error)
	}
	update func([]ingest.CameraConfig)
	// reload re-reads the registry (cameras.Service.Apply, which calls
	// SetCameras): the registry is shared through the index, but only the
	// node that changed it is told, so the others reload every
	// registryRefresh and whenever they hold a camera they do not know.
	reload func(ctx context.Context) error
	log    *slog.Logger

	mu     sync.Mutex
	all    []ingest.CameraConfig
	held   map[string]int64
	synced []string // the ids last written to the lease table
	kick   chan struct{}
}

// registryRefresh is how often a cluster node re-reads the shared camera
// registry (cameras added, changed or removed through another node).
const registryRefresh = 10 * time.Second

// SetCameras is the registry's OnChange: the lease table's cameras become
// the registry's (new ones claimable, removed or disabled ones retired)
// and the manager is updated.
func (c *clusterCameras) SetCameras(cams []ingest.CameraConfig) {
	ids := make([]string, 0, len(cams))
	for _, cam := range cams {
		ids = append(ids, cam.ID)
	}
	slices.Sort(ids)
	c.mu.Lock()
	c.all = append([]ingest.CameraConfig(nil), cams...)
	c.applyLocked()
	changed := !slices.Equal(ids, c.synced)
	c.mu.Unlock()
	if !changed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	added, removed, err := c.leases.SetLeaseCameras(ctx, ids)
	if err != nil {
		// Retried at the next refresh (synced is not updated).
		c.log.Error("cannot update the lease table's cameras", "err", err)
		return
	}
	if added > 0 || removed > 0 {
		c.log.Info("lease table cameras updated", "added", added, "retired", removed, "cameras", len(ids))
	}
	c.mu.Lock()
	c.synced = ids
	c.mu.Unlock()
}

// SetHeld is the Member's OnChange.
func (c *clusterCameras) SetHeld(held map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = maps.Clone(held)
	if c.applyLocked() && c.kick != nil {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// applyLocked updates the manager; it reports whether a held camera is
// missing from the registry as this node last read it.
func (c *clusterCameras) applyLocked() (unknown bool) {
	var run []ingest.CameraConfig
	for _, cam := range c.all {
		if ep, ok := c.held[cam.ID]; ok {
			cam.Epoch = ep
			run = append(run, cam)
		}
	}
	c.update(run)
	return len(run) < len(c.held)
}

// Run reloads the registry every registryRefresh, and at once when the
// node holds a camera it does not know (added through another node),
// until ctx ends.
func (c *clusterCameras) Run(ctx context.Context) error {
	t := time.NewTicker(registryRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		}
		if err := c.reload(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("camera registry reload failed", "err", err)
		}
	}
}

// fencedIndex is the segment index of a camera recorded under lease epoch:
// the index refuses its writes (index.ErrFenced) once another node has
// claimed the camera, and the writer then stops (segmenter.ErrFenced).
type fencedIndex struct {
	db interface {
		CreateSegmentFenced(ctx context.Context, seg *recording.Segment, epoch int64) error
		AddFragmentsFenced(ctx context.Context, frags []recording.Fragment, epoch int64) error
		FinishSegmentFenced(ctx context.Context, id int64, end time.Time, size int64, sha256 string, epoch int64) error
	}
	epoch   int64
	refused func() // counts a refused write
}

var _ segmenter.Index = fencedIndex{}

func (f fencedIndex) fenced(err error) error {
	if errors.Is(err, index.ErrFenced) {
		if f.refused != nil {
			f.refused()
		}
		return fmt.Errorf("%w: %w", segmenter.ErrFenced, err)
	}
	return err
}

func (f fencedIndex) CreateSegment(ctx context.Context, seg *recording.Segment) error {
	return f.fenced(f.db.CreateSegmentFenced(ctx, seg, f.epoch))
}

func (f fencedIndex) AddFragments(ctx context.Context, frags []recording.Fragment) error {
	return f.fenced(f.db.AddFragmentsFenced(ctx, frags, f.epoch))
}

func (f fencedIndex) FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error {
	return f.fenced(f.db.FinishSegmentFenced(ctx, id, end, size, sha256, f.epoch))
}

// localSegments keeps the segments whose spool file is in this node's
// spool: on a cluster node the shared index also lists the other nodes'
// segments, which start-up recovery must not touch (it would delete the
// rows of segments another node is recording) and the uploader cannot
// upload.
func localSegments(dir spool.Dir, segs []recording.Segment) []recording.Segment {
	out := segs[:0]
	for _, s := range segs {
		if _, err := os.Stat(dir.Path(s.ObjectKey)); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// localRecovery is segmenter.Recover's index on a cluster node: only the
// segments in this node's spool, and each recovered through the fence
// (segmenter.Fence). While the camera's lease is still at the segment's
// epoch the fragments found in the file are written with the fenced calls
// (refused, and the segment left for the next start, if another node
// claims the camera meanwhile); once another node has taken the camera
// over, only what was committed under the lease is kept and the segment
// is finished on it (its end is the last committed fragment's, before the
// takeover), so that a stalled writer's late footage never reaches the
// index, while the footage it did commit is uploaded.
type localRecovery struct {
	segmenter.RecoveryIndex
	fence interface {
		SegmentFence(ctx context.Context, id int64) (epoch int64, stale bool, committed int, err error)
		AddFragmentsFenced(ctx context.Context, frags []recording.Fragment, epoch int64) error
		FinishSegmentFenced(ctx context.Context, id int64, end time.Time, size int64, sha256 string, epoch int64) error
	}
	dir spool.Dir
	// live: segment id → epoch, for the segments whose lease Recoverable
	// found still held.
	live map[int64]int64
}

var _ segmenter.Fence = (*localRecovery)(nil)

func (l *localRecovery) SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error) {
	segs, err := l.RecoveryIndex.SegmentsByState(ctx, st)
	return localSegments(l.dir, segs), err
}

// Recoverable implements segmenter.Fence.
func (l *localRecovery) Recoverable(ctx context.Context, seg recording.Segment) (int, error) {
	epoch, stale, committed, err := l.fence.SegmentFence(ctx, seg.ID)
	if err != nil {
		return 0, err
	}
	if stale {
		return committed, nil
	}
	if l.live == nil {
		l.live = map[int64]int64{}
	}
	l.live[seg.ID] = epoch
	return -1, nil
}

func (l *localRecovery) AddFragments(ctx context.Context, frags []recording.Fragment) error {
	if len(frags) == 0 {
		return nil
	}
	epoch, ok := l.live[frags[0].SegmentID]
	if !ok {
		return fmt.Errorf("segment %d: fragments without a lease check: %w", frags[0].SegmentID, index.ErrFenced)
	}
	return l.fence.AddFragmentsFenced(ctx, frags, epoch)
}

func (l *localRecovery) FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error {
	if epoch, ok := l.live[id]; ok {
		return l.fence.FinishSegmentFenced(ctx, id, end, size, sha256, epoch)
	}
	// Taken over: Recover finishes it on the fragments already indexed
	// under the lease (it added none), ending before the takeover.
	return l.RecoveryIndex.FinishSegment(ctx, id, end, size, sha256)
}

// localUploads is the uploader's index on a cluster node.
type localUploads struct {
	spool.SegmentIndex
	dir spool.Dir
}

func (l localUploads) SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error) {
	segs, err := l.SegmentIndex.SegmentsByState(ctx, st)
	return localSegments(l.dir, segs), err
}

// newMember is this node's lease keeper.
func newMember(cfg config.Cluster, db *index.DB, m *cluster.Metrics, onChange func(map[string]int64), logger *slog.Logger) *cluster.Member {
	return &cluster.Member{
		Store: db, Nodes: db, Node: cfg.NodeID, TTL: cfg.LeaseTTL, Interval: cfg.LeaseTTL / 5,
		Capacity: cfg.Capacity, Metrics: m, OnChange: onChange, Logger: logger,
		Info: index.Node{AdvertiseURL: cfg.AdvertiseURL, Version: version(), Weight: cfg.Weight},
	}
}

// clusterSpool is the replay's segment reader on a cluster node and the
// internal endpoint serving this node's spool to the others: with
// cluster.secret_file, footage still in another node's spool is fetched
// from it (peer package); without, only this node's spool and the store
// are read (and internal is nil).
func clusterSpool(cfg config.Cluster, db peer.SegmentNodes, local spool.Reader, reg prometheus.Registerer,
	logger *slog.Logger) (reader replay.SegmentReader, internal http.Handler, err error) {
	if cfg.SecretFile == "" {
		logger.Warn("cluster.secret_file not set: footage not yet uploaded replays only on the node that recorded it")
		return local, nil, nil
	}
	secret, err := peer.LoadSecret(cfg.SecretFile)
	if err != nil {
		return nil, nil, err
	}
	m := peer.NewMetrics(reg)
	log := logger.With("component", "peer")
	reader = &peer.Reader{Local: local, Index: db, Signer: peer.Signer{Node: cfg.NodeID, Secret: secret},
		Timeout: cfg.FetchTimeout, Metrics: m}
	internal = &peer.SpoolHandler{Dir: local.Dir, Verifier: peer.Verifier{Secret: secret}, Metrics: m, Logger: log}
	return reader, internal, nil
}
