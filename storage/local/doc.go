// Package local is the storage.Store backend on a local directory tree, the
// embedded default.
//
// Data flow:
//
//	Put(key, r) ──▶ <dir>/#put-NNN ──fsync──▶ rename ──▶ <root>/<key>  ──fsync(dir)
//	PutFile(key, spool file) ──▶ hard link <dir>/#put-NNNl ──rename──▶ <root>/<key>
//	                             (copy through Put when not on the same filesystem)
//	PutFileSHA256(key, spool file, sha) ──▶ hard link (or fsynced copy) ──hash = sha?──▶ rename
//	                             (mismatch: temporary removed, old object kept)
//	GetRange(key, off, n) ◀── os.File + io.SectionReader
//
// On-disk layout: the object with key "cam/2024/05/06/07/x.mp4" is the file
// <root>/cam/2024/05/06/07/x.mp4. Temporary files are named "#put-*": '#'
// is not a key character, so List never reports them. Directories are
// created on demand and removed by Delete when they become empty.
//
// Keys are checked with CheckKey (exported so the spool applies the same
// rules): slash-separated [A-Za-z0-9._-] segments, no ".", "..", empty
// segment or leading slash. A key cannot be both an object and a "directory"
// of other objects here (S3 allows it; our key layout never needs it).
//
// List walks only the directory named by the prefix up to its last '/'
// (a camera-day prefix reads that day's directories), sorting each
// directory so that keys come in exact lexical order ("x/" sorts after
// "x.mp4").
//
// Concurrency: every method is safe for concurrent use; there is no lock.
// Writers never touch a visible file: a reader sees the old object or the
// new one. Put retries creating its temporary file when a concurrent Delete
// removed the freshly created (empty) directory.
//
// Durability (fsync policy): Put fsyncs the temporary file before the
// rename and the directory after it, and fsyncs the parent of every
// directory it creates; an object is durable when Put returns. PutFile
// fsyncs the source file before linking. Delete does not fsync (a deleted
// object reappearing after a crash is harmless: retention deletes again).
//
// Caveats: a crash during Put leaves a "#put-*" file behind; nothing sweeps
// them yet. PutFile's object shares its inode with the source file, which
// must therefore not be modified afterwards (the uploader only removes it).
// Stat and List leave ObjectInfo.SHA256 empty; Put, PutFile and
// PutFileSHA256 fill it. PutFileSHA256 still reads the file once although
// the hash is given: the linked object is the spool file itself, and that
// read is the only check that it still holds what the segmenter hashed (see
// its doc).
package local
