package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is one published snapshot.
type Version struct {
	// Seq numbers versions in publish order, from 1.
	Seq  uint64
	Name string
	Size int64
	// SHA256 is the hex digest of the file's bytes.
	SHA256  string
	Created time.Time
	Path    string
	// Reason is why the gate rejected it, where the store keeps it with
	// the version (a store on Kafka); RejectReason reads it.
	Reason string
}

func (v Version) String() string { return fmt.Sprintf("%s@%d", v.Name, v.Seq) }

// Content makes the bytes of version seq of a name once the store has
// chosen seq, so that a snapshot can sign the name and version it is
// stored under.
type Content func(seq uint64) (io.Reader, error)

// Bytes is Content that does not depend on the version.
func Bytes(r io.Reader) Content { return func(uint64) (io.Reader, error) { return r, nil } }

// Store keeps model snapshots.
type Store interface {
	// Publish stores a new version and makes it the latest. A failed or
	// interrupted publish leaves the latest as it was.
	Publish(ctx context.Context, name string, c Content) (Version, error)
	// Reject stores a snapshot that did not pass a quality gate, with the
	// reason; it never becomes the latest.
	Reject(ctx context.Context, name string, c Content, reason string) (Version, error)
	// Latest is the newest published version; ErrEmpty if there is none.
	Latest(ctx context.Context) (Version, error)
	// List lists the published versions, oldest first.
	List(ctx context.Context) ([]Version, error)
	// Rejected lists the rejected versions, oldest first.
	Rejected(ctx context.Context) ([]Version, error)
	// Open reads a version's bytes.
	Open(ctx context.Context, v Version) (io.ReadCloser, error)
	// Prune keeps the newest keep versions (and always the latest).
	Prune(ctx context.Context, keep int) error
}

// Errors.
var (
	ErrEmpty = errors.New("modelstore: no version published yet")
	ErrName  = errors.New("modelstore: invalid name")
)

const (
	latestFile  = "LATEST"
	lockFile    = ".lock"
	rejectedDir = "rejected"
	suffix      = ".snap"
	maxName     = 128
)

// Dir is a Store in a local directory: versions are files
// v<seq>-<name>.snap, LATEST names the latest. Writes go to a temporary
// file that is synced and renamed, then the directory is synced, then
// LATEST is replaced the same way; a lock file serializes publishers
// across processes.
type Dir struct {
	Root string

	mu sync.Mutex
	// afterRename, in tests, fails a publish between the rename of the
	// version and the update of LATEST.
	afterRename func() error
}

var _ Store = (*Dir)(nil)

func checkName(name string) error {
	if name == "" || len(name) > maxName || strings.ContainsAny(name, `/\`+"\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w %q: want 1 to %d characters, no path separators, not starting with a dot", ErrName, name, maxName)
	}
	return nil
}

func fileName(seq uint64, name string) string { return fmt.Sprintf("v%012d-%s%s", seq, name, suffix) }

// ParseFileName returns the version and name of a version file's base
// name; false if f is not one.
func ParseFileName(f string) (seq uint64, name string, ok bool) {
	if !strings.HasPrefix(f, "v") || !strings.HasSuffix(f, suffix) || len(f) < 14+len(suffix) || f[13] != '-' {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(f[1:13], 10, 64)
	if err != nil || seq == 0 {
		return 0, "", false
	}
	return seq, strings.TrimSuffix(f[14:], suffix), true
}

// lock takes the store's lock (in this process and across processes).
func (d *Dir) lock() (unlock func(), err error) {
	d.mu.Lock()
	if err := os.MkdirAll(filepath.Join(d.Root, rejectedDir), 0o755); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d.Root, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		d.mu.Unlock()
		return nil, fmt.Errorf("modelstore: locking %s: %w", d.Root, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		d.mu.Unlock()
	}, nil
}

// writeSynced writes r to dir/name through a synced temporary file and a
// rename, then syncs dir. It returns the size and SHA-256.
func writeSynced(ctx context.Context, dir, name string, r io.Reader) (int64, string, error) {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// nextSeq is one more than the highest sequence number in use, published
// or rejected.
func (d *Dir) nextSeq() (uint64, error) {
	var top uint64
	for _, dir := range []string{d.Root, filepath.Join(d.Root, rejectedDir)} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		for _, e := range entries {
			if seq, _, ok := ParseFileName(e.Name()); ok && seq > top {
				top = seq
			}
		}
	}
	return top + 1, nil
}

// reserve checks name, takes the store's lock and returns the next
// sequence number; the caller calls unlock when done.
func (d *Dir) reserve(name string) (seq uint64, unlock func(), err error) {
	if err := checkName(name); err != nil {
		return 0, nil, err
	}
	if unlock, err = d.lock(); err != nil {
		return 0, nil, err
	}
	if seq, err = d.nextSeq(); err != nil {
		unlock()
		return 0, nil, err
	}
	d.removeLeftovers()
	return seq, unlock, nil
}

// removeLeftovers removes the temporary files of writes that never
// finished (a publisher killed mid-write). Only a writer holding the
// store's lock makes them, so under the lock every one is a leftover.
func (d *Dir) removeLeftovers() {
	for _, dir := range []string{d.Root, filepath.Join(d.Root, rejectedDir)} {
		tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
		for _, t := range tmps {
			os.Remove(t)
		}
	}
}

// Publish stores c as the next version of name and points LATEST at it.
func (d *Dir) Publish(ctx context.Context, name string, c Content) (Version, error) {
	seq, unlock, err := d.reserve(name)
	if err != nil {
		return Version{}, err
	}
	defer unlock()
	file := fileName(seq, name)
	r, err := c(seq)
	if err != nil {
		return Version{}, fmt.Errorf("modelstore: making %s: %w", file, err)
	}
	size, sum, err := writeSynced(ctx, d.Root, file, r)
	if err != nil {
		return Version{}, fmt.Errorf("modelstore: publishing %s: %w", file, err)
	}
	if d.afterRename != nil {
		if err := d.afterRename(); err != nil {
			return Version{}, err
		}
	}
	if _, _, err := writeSynced(ctx, d.Root, latestFile, strings.NewReader(file+"\n")); err != nil {
		return Version{}, fmt.Errorf("modelstore: pointing %s at %s: %w", latestFile, file, err)
	}
	return Version{Seq: seq, Name: name, Size: size, SHA256: sum, Created: time.Now(), Path: filepath.Join(d.Root, file)}, nil
}

// Reject stores c under rejected/ with a file giving the reason.
func (d *Dir) Reject(ctx context.Context, name string, c Content, reason string) (Version, error) {
	seq, unlock, err := d.reserve(name)
	if err != nil {
		return Version{}, err
	}
	defer unlock()
	dir := filepath.Join(d.Root, rejectedDir)
	file := fileName(seq, name)
	r, err := c(seq)
	if err != nil {
		return Version{}, fmt.Errorf("modelstore: making %s: %w", file, err)
	}
	if _, _, err := writeSynced(ctx, dir, file+".reason", strings.NewReader(reason+"\n")); err != nil {
		return Version{}, err
	}
	size, sum, err := writeSynced(ctx, dir, file, r)
	if err != nil {
		return Version{}, fmt.Errorf("modelstore: rejecting %s: %w", file, err)
	}
	return Version{Seq: seq, Name: name, Size: size, SHA256: sum, Created: time.Now(), Path: filepath.Join(dir, file)}, nil
}

// RejectReason reads why a rejected version was rejected.
func RejectReason(v Version) (string, error) {
	if v.Reason != "" || IsKafka(v.Path) {
		return v.Reason, nil
	}
	b, err := os.ReadFile(v.Path + ".reason")
	return strings.TrimSpace(string(b)), err
}

func (d *Dir) version(dir, file string) (Version, error) {
	seq, name, ok := ParseFileName(file)
	if !ok {
		return Version{}, fmt.Errorf("modelstore: %s is not a version file", file)
	}
	path := filepath.Join(dir, file)
	st, err := os.Stat(path)
	if err != nil {
		return Version{}, err
	}
	return Version{Seq: seq, Name: name, Size: st.Size(), Created: st.ModTime(), Path: path}, nil
}

// Latest is the version LATEST names.
func (d *Dir) Latest(context.Context) (Version, error) {
	b, err := os.ReadFile(filepath.Join(d.Root, latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return Version{}, ErrEmpty
	}
	if err != nil {
		return Version{}, err
	}
	file := strings.TrimSpace(string(b))
	v, err := d.version(d.Root, filepath.Base(file))
	if err != nil {
		return Version{}, fmt.Errorf("modelstore: %s names %s: %w", filepath.Join(d.Root, latestFile), file, err)
	}
	return v, nil
}

// List lists the published versions, oldest first. A version whose
// publish failed after its file was renamed (LATEST never pointed at it)
// is listed: its bytes are whole, and verification decides whether it
// serves.
func (d *Dir) List(context.Context) ([]Version, error) {
	return d.list(d.Root)
}

// Rejected lists the rejected versions, oldest first.
func (d *Dir) Rejected(context.Context) ([]Version, error) {
	return d.list(filepath.Join(d.Root, rejectedDir))
}

func (d *Dir) list(dir string) ([]Version, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, e := range entries {
		if _, _, ok := ParseFileName(e.Name()); !ok || e.IsDir() {
			continue
		}
		v, err := d.version(dir, e.Name())
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Open opens a version's file.
func (d *Dir) Open(_ context.Context, v Version) (io.ReadCloser, error) { return os.Open(v.Path) }

// Prune removes all but the newest keep versions, never the latest, and
// leftover temporary files.
func (d *Dir) Prune(ctx context.Context, keep int) error {
	if keep < 1 {
		return fmt.Errorf("modelstore: keep %d: keep at least one version", keep)
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	latest, err := d.Latest(ctx)
	if err != nil && !errors.Is(err, ErrEmpty) {
		return err
	}
	vs, err := d.List(ctx)
	if err != nil {
		return err
	}
	for i, v := range vs {
		if i < len(vs)-keep && v.Seq != latest.Seq {
			if err := os.Remove(v.Path); err != nil {
				return err
			}
		}
	}
	d.removeLeftovers()
	return syncDir(d.Root)
}

// Head is the newest version the store vouches for: the one LATEST names
// or, when LATEST is missing or names a file that is not there while
// versions exist, the newest version listed. The pointer is unsigned and
// only orders versions, so a broken one must not leave a store with good
// versions serving nothing; pointer then says what was wrong with it.
// With no version at all, err is ErrEmpty (or LATEST's problem).
func Head(ctx context.Context, s Store) (v Version, pointer, err error) {
	v, err = s.Latest(ctx)
	if err == nil {
		return v, nil, nil
	}
	vs, lerr := s.List(ctx)
	if lerr != nil {
		return Version{}, nil, lerr
	}
	if len(vs) == 0 {
		return Version{}, nil, err
	}
	if errors.Is(err, ErrEmpty) {
		err = fmt.Errorf("modelstore: no %s pointer, though %d versions are there", latestFile, len(vs))
	}
	return vs[len(vs)-1], err, nil
}

// LatestVerified is the newest version, from the head back (Head), that
// verify accepts, and the errors of the newer ones it skipped, led by what
// was wrong with the LATEST pointer if anything: a corrupt newest snapshot
// leaves the previous one serving, and so does a broken pointer.
func LatestVerified(ctx context.Context, s Store, verify func(Version, io.Reader) error) (Version, []error, error) {
	latest, pointer, err := Head(ctx, s)
	if err != nil {
		return Version{}, nil, err
	}
	vs, err := s.List(ctx)
	if err != nil {
		return Version{}, nil, err
	}
	var skipped []error
	if pointer != nil {
		skipped = append(skipped, pointer)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if v.Seq > latest.Seq {
			continue // renamed, but LATEST never pointed at it
		}
		rc, err := s.Open(ctx, v)
		if err == nil {
			err = verify(v, rc)
			rc.Close()
		}
		if err == nil {
			return v, skipped, nil
		}
		skipped = append(skipped, fmt.Errorf("%s: %w", v, err))
	}
	return Version{}, skipped, fmt.Errorf("modelstore: no version verifies (%d tried)", len(skipped))
}

// Watch polls s every interval and sends each new latest version once, in
// order; the channel closes when ctx ends.
func Watch(ctx context.Context, s Store, interval time.Duration) <-chan Version {
	ch := make(chan Version)
	go func() {
		defer close(ch)
		var last uint64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := s.Latest(ctx); err == nil && v.Seq != last {
				last = v.Seq
				select {
				case ch <- v:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}
