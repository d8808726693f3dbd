package index

import (
	"context"
	"path/filepath"
	"testing"

	"xueliang/index/pgtest"
)

// The conformance suite: every test of the index's behaviour runs against
// both engines, SQLite (TestSQLite) and a real PostgreSQL server
// (TestPostgres, which fails when PostgreSQL is missing). Engine-specific
// tests (pragmas, query plans, upgrades of old SQLite files) stay Test*
// functions of their own.

// backend opens fresh index databases of one engine.
type backend struct {
	dialect dialect
	// newDB returns the location of a new, empty database (a file path or
	// a PostgreSQL URL).
	newDB func(t *testing.T) string
	// openDSN opens the database at a location newDB returned.
	openDSN func(ctx context.Context, dsn string) (*DB, error)
}

// open opens a new database, closed at cleanup.
func (be *backend) open(t *testing.T) *DB {
	t.Helper()
	db, err := be.openDSN(context.Background(), be.newDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

var conformance = []struct {
	name string
	run  func(t *testing.T, be *backend)
}{
	{"OpenMigratesOnceAndReopenIsNoop", testOpenMigratesOnceAndReopenIsNoop},
	{"SchemaTooNew", testSchemaTooNew},
	{"Cameras", testCameras},
	{"SegmentLifecycle", testSegmentLifecycle},
	{"SegmentsInRange", testSegmentsInRange},
	{"FragmentsRange", testFragmentsRange},
	{"Timeline", testTimeline},
	{"CameraArchive", testCameraArchive},
	{"ConcurrentAddFragments", testConcurrentAddFragments},
	{"CoverageMatchesSegments", testCoverageMatchesSegments},
	{"LoadSegmentsKeepsCoverage", testLoadSegmentsKeepsCoverage},
	{"LoadSegmentsAllOrNothing", testLoadSegmentsAllOrNothing},
	{"GroupCommitManyWriters", testGroupCommitManyWriters},
	{"GroupCommitFailingRequestFailsAlone", testGroupCommitFailingRequestFailsAlone},
	{"GroupCommitContextCancel", testGroupCommitContextCancel},
	{"GroupCommitCloseInFlight", testGroupCommitCloseInFlight},
	{"GroupCommitWindow", testGroupCommitWindow},
	{"CameraRegistryCRUD", testCameraRegistryCRUD},
	{"UsersAndTokens", testUsersAndTokens},
	{"AuditAppendOnly", testAuditAppendOnly},
	{"MotionStoreAndSearch", testMotionStoreAndSearch},
	{"CameraEvents", testCameraEvents},
	{"MarkDeletingOldestUnlockedStored", testMarkDeletingOldestUnlockedStored},
	{"LockedBytesFromLockRanges", testLockedBytes},
	{"MarkDeletingAcrossCameras", testMarkDeletingAcrossCameras},
	{"RetentionOverrides", testRetentionOverrides},
	{"EvidenceLocksManyCameras", testEvidenceLocksManyCameras},
	{"ReleaseLocked", testReleaseLocked},
	{"DeleteSegmentRowsKeepsCoverage", testDeleteSegmentRowsKeepsCoverage},
	{"DeleteMetadataBefore", testDeleteMetadataBefore},
	{"MarkLost", testMarkLost},
	{"Layouts", testLayouts},
}

func runConformance(t *testing.T, be *backend) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) { c.run(t, be) })
	}
}

func sqliteBackend() *backend {
	return &backend{
		dialect: dialectSQLite,
		newDB:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "index.db") },
		openDSN: func(ctx context.Context, path string) (*DB, error) { return Open(ctx, path, nil) },
	}
}

func postgresBackend(srv *pgtest.Server) *backend {
	return &backend{
		dialect: dialectPostgres,
		newDB:   func(t *testing.T) string { return srv.NewDatabase(t) },
		openDSN: func(ctx context.Context, url string) (*DB, error) { return OpenPostgres(ctx, url, nil) },
	}
}

func TestSQLite(t *testing.T) { runConformance(t, sqliteBackend()) }

func TestPostgres(t *testing.T) { runConformance(t, postgresBackend(pgtest.Start(t))) }
