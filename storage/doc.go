// Package storage defines the object-store contract that recorded footage is
// written to and read back from, and holds its backends.
//
// Data flow:
//
//	ingest (segment complete in spool) ──Put──▶ Store ◀──GetRange── replay
//
// A segment object is one fragmented MP4 file laid out and keyed as
// storage/recording defines. Objects are immutable: a segment is put once,
// when it is closed; while it is being recorded it lives in the local spool
// directory (data_dir/spool/<key>) and is read from there.
//
// Nothing under storage knows the index or ingest: storage/spool and
// storage/reconcile talk to the index through interfaces they declare, in
// storage/recording types.
//
// Backends: storage/local (a directory tree, the embedded default) and
// storage/s3 (minio-go; MinIO in production). Every backend passes the
// conformance suite in storage/storagetest; storage/miniotest runs a real
// MinIO server for tests.
package storage
