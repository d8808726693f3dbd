package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
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
		AddLeaseCameras(ctx context.Context, ids []string) error
	}
	update func([]ingest.CameraConfig)
	log    *slog.Logger

	mu   sync.Mutex
	all  []ingest.CameraConfig
	held map[string]int64
}

// SetCameras is the registry's OnChange: the cameras are made claimable
// and the manager updated.
func (c *clusterCameras) SetCameras(cams []ingest.CameraConfig) {
	ids := make([]string, 0, len(cams))
	for _, cam := range cams {
		ids = append(ids, cam.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.leases.AddLeaseCameras(ctx, ids); err != nil {
		c.log.Error("cannot add cameras to the lease table", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append([]ingest.CameraConfig(nil), cams...)
	c.applyLocked()
}

// SetHeld is the Member's OnChange.
func (c *clusterCameras) SetHeld(held map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = maps.Clone(held)
	c.applyLocked()
}

func (c *clusterCameras) applyLocked() {
	var run []ingest.CameraConfig
	for _, cam := range c.all {
		if ep, ok := c.held[cam.ID]; ok {
			cam.Epoch = ep
			run = append(run, cam)
		}
	}
	c.update(run)
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

// localRecovery is segmenter.Recover's index on a cluster node.
type localRecovery struct {
	segmenter.RecoveryIndex
	dir spool.Dir
}

func (l localRecovery) SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error) {
	segs, err := l.RecoveryIndex.SegmentsByState(ctx, st)
	return localSegments(l.dir, segs), err
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
