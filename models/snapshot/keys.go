package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Key files are one line: a prefix naming what the file holds, then the
// key in base64 (the 32-byte seed of a private key, the 32-byte public
// key).
const (
	privatePrefix = "muon-ed25519-private "
	publicPrefix  = "muon-ed25519-public "
)

// ErrKeyFile means a key file is not one GenerateKey writes.
var ErrKeyFile = errors.New("snapshot: not a muon key file")

// GenerateKey makes a signing key pair and writes it to dir as
// <name>.key (private, mode 0600) and <name>.pub. It refuses to overwrite
// either file.
func GenerateKey(dir, name string) (private, public string, err error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", "", fmt.Errorf("snapshot: key name %q: want a plain file name", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	private, public = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for _, p := range []string{private, public} {
		if _, err := os.Stat(p); err == nil {
			return "", "", fmt.Errorf("snapshot: %s exists; move it away or pick another name", p)
		}
	}
	if err := writeNew(private, privatePrefix+base64.StdEncoding.EncodeToString(priv.Seed())+"\n", 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(public, publicPrefix+base64.StdEncoding.EncodeToString(pub)+"\n", 0o644); err != nil {
		os.Remove(private)
		return "", "", err
	}
	return private, public, nil
}

func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readKeyFile(path, prefix string, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	line := string(bytes.TrimSpace(b))
	if !strings.HasPrefix(line, prefix) {
		want := "a public key (.pub)"
		if prefix == privatePrefix {
			want = "a private key (.key)"
		}
		return nil, fmt.Errorf("%w: %s is not %s from `muon models keygen`", ErrKeyFile, path, want)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, prefix))
	if err != nil || len(key) != size {
		return nil, fmt.Errorf("%w: %s: the key is not %d bytes of base64", ErrKeyFile, path, size)
	}
	return key, nil
}

// LoadPrivateKey reads a private key file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	seed, err := readKeyFile(path, privatePrefix, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	key, err := readKeyFile(path, publicPrefix, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(key), nil
}

// LoadKeyring trusts the public keys in the given files and folders (every
// *.pub in a folder).
func LoadKeyring(paths ...string) (Keyring, error) {
	k := Keyring{}
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			files, err = filepath.Glob(filepath.Join(p, "*.pub"))
			if err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			pub, err := LoadPublicKey(f)
			if err != nil {
				return nil, err
			}
			k[KeyIDOf(pub)] = pub
		}
	}
	if len(k) == 0 {
		return nil, fmt.Errorf("snapshot: no trusted public keys in %v", paths)
	}
	return k, nil
}
