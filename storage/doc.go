// Package storage defines the object-store contract that recorded footage is
// written to and read back from, and holds its backends.
//
// Data flow:
//
//	ingest (segment complete in spool) ──Put──▶ Store ◀──GetRange── replay
//
// A segment object is one fragmented MP4 file: ftyp+moov (init) followed by
// moof+mdat fragments, one per GOP. Objects are immutable: a segment is put
// once, when it is closed; while it is being recorded it lives in the local
// spool directory (data_dir/spool/<key>) and is read from there.
//
// Key layout (UTC, chosen so that listing one camera-day or camera-hour is a
// cheap prefix scan):
//
//	<camera>/<YYYY>/<MM>/<DD>/<HH>/<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.mp4
//
// Backends: storage/local (a directory tree, the embedded default) and
// storage/s3 (minio-go; MinIO in production). Every backend passes the
// conformance suite in storage/storagetest; storage/miniotest runs a real
// MinIO server for tests.
package storage
