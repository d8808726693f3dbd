package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"xueliang/storage/recording"
)

// Which node's spool holds a segment (cluster mode, issue #21): a segment
// is in the spool of the node that records it until it is stored, and the
// other nodes replay it from there (cmd/xueliang/internal/peer). The
// fenced insert (CreateSegmentFenced) writes the lease holder's node id
// into the row; other inserts leave it empty (one node: the spool is
// local).

// segmentNodeMigrations: version 14.
var segmentNodeMigrations = []migration{
	{
		version: 14,
		name:    "segment spool node",
		stmts:   []string{`ALTER TABLE segments ADD COLUMN node_id TEXT NOT NULL DEFAULT ''`},
		pgStmts: []string{`ALTER TABLE segments ADD COLUMN node_id TEXT NOT NULL DEFAULT ''`},
	},
}

// SegmentNode is where a segment's bytes are, as the index knows it now.
type SegmentNode struct {
	State recording.SegmentState
	// Node is the id of the node that recorded the segment into its spool
	// ("" when not recorded in cluster mode).
	Node string
	// AdvertiseURL is that node's API base URL from the node registry (""
	// when the node never registered or advertises none).
	AdvertiseURL string
}

// SegmentNode returns segment id's current state and the node whose spool
// holds it while it is not stored; ErrNotFound when there is no such row.
func (db *DB) SegmentNode(ctx context.Context, id int64) (SegmentNode, error) {
	var n SegmentNode
	var st int
	err := db.r.QueryRowContext(ctx, `SELECT s.state, s.node_id, COALESCE(n.advertise_url, '')
		FROM segments s LEFT JOIN cluster_nodes n ON n.node_id = s.node_id WHERE s.id = ?`, id).Scan(&st, &n.Node, &n.AdvertiseURL)
	if errors.Is(err, sql.ErrNoRows) {
		return SegmentNode{}, fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return SegmentNode{}, fmt.Errorf("segment %d node: %w", id, err)
	}
	n.State = recording.SegmentState(st)
	return n, nil
}
