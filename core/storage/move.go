package storage

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
)

// Methods of WebDAV (RFC 4918) that a storage node answers for files.
const (
	methodMove = "MOVE"
	methodCopy = "COPY"
)

// serveMoveCopy answers MOVE and COPY of one file to another name on the
// same device, as MogileFS::Client's edit_file and our tracker's
// edit_file use them: the Destination header names the new path (an
// absolute URL on this node or a path), Overwrite: F refuses to replace
// an existing file (412). The answer is 201 for a new name, 204 for a
// replaced one. Directories are not moved or copied, and nothing leaves
// the device's directory.
//
// A COPY is a hard link where the file system has them: every write on
// this node builds a new version aside and renames it in (PUT, ranged
// PUT, MOVE), so no write through one name can change the other's bytes.
// Elsewhere the bytes are copied. Either way the destination appears
// whole or not at all, and durably.
func (s *Server) serveMoveCopy(w http.ResponseWriter, r *http.Request) {
	dev, rel := s.writeTarget(w, r)
	if dev == nil {
		return
	}
	defer s.dirs.release(dev)
	root := dev.root
	dst, ok := s.destination(w, r)
	if !ok {
		return
	}
	if dst == rel {
		httpError(w, http.StatusForbidden, "Source and destination are the same")
		return
	}
	if st, err := root.Lstat(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
			httpError(w, http.StatusNotFound, "")
		} else {
			s.fail(w, r, strings.ToLower(r.Method), err)
		}
		return
	} else if !st.Mode().IsRegular() {
		httpError(w, http.StatusForbidden, "Only files are moved or copied")
		return
	}
	dir, err := openDir(root, path.Dir(dst))
	if err != nil {
		s.fail(w, r, "mkdir", err)
		return
	}
	defer dir.Close()
	name := path.Base(dst)
	// Ranged PUTs of the destination build on its current version: one
	// must not run across the replacement.
	ref := s.file(root, dst, r)
	defer ref.release()
	unlock := ref.lockBuild()
	defer unlock()
	existed := false
	if st, err := dir.Lstat(name); err == nil {
		if !st.Mode().IsRegular() {
			httpError(w, http.StatusForbidden, "The destination is not a file")
			return
		}
		existed = true
	}
	if existed && r.Header.Get("Overwrite") == "F" {
		httpError(w, http.StatusPreconditionFailed, "The destination exists and Overwrite is F")
		return
	}
	if r.Method == methodMove {
		err = s.moveDurably(ref, root, rel, dst)
	} else {
		err = s.copyDurably(r, ref, root, rel, dst, dir, name)
	}
	if err != nil {
		s.fail(w, r, strings.ToLower(r.Method), err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpError(w, http.StatusCreated, "")
}

// destination checks a MOVE or COPY's Destination header and returns it
// relative to the source's device directory; on refusal it has answered.
func (s *Server) destination(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, err := url.Parse(r.Header.Get("Destination"))
	if err != nil || u.Path == "" {
		httpError(w, http.StatusBadRequest, "Missing or invalid Destination header")
		return "", false
	}
	if u.Host != "" && !strings.EqualFold(u.Host, r.Host) {
		httpError(w, http.StatusBadGateway, "The destination is on another server")
		return "", false
	}
	if !validWritePath(u.Path) {
		httpError(w, http.StatusBadRequest, "Invalid destination filename")
		return "", false
	}
	first, rest, _ := splitPath(u.Path)
	srcFirst, _, _ := splitPath(r.URL.Path)
	if first != srcFirst {
		httpError(w, http.StatusBadGateway, "The destination is on another device")
		return "", false
	}
	if rest == "" || reservedWrite(http.MethodPut, rest) {
		httpError(w, http.StatusForbidden, "This file belongs to the storage node")
		return "", false
	}
	return rest, true
}

// moveDurably renames rel to dst under root and syncs both directories.
func (s *Server) moveDurably(ref *fileRef, root *os.Root, rel, dst string) error {
	if err := ref.putInPlace(func() error { return root.Rename(rel, dst) }); err != nil {
		return mapNoSpace(err)
	}
	if err := s.syncDir(root, path.Dir(dst)); err != nil {
		return err
	}
	if path.Dir(rel) == path.Dir(dst) {
		return nil
	}
	return s.syncDir(root, path.Dir(rel))
}

// copyDurably puts a copy of rel under root at dst (name in dir): a
// hard link renamed into place, or a copy of the bytes where the file
// system has no links.
func (s *Server) copyDurably(r *http.Request, ref *fileRef, root *os.Root, rel, dst string, dir *os.Root, name string) error {
	tmp := tempName(dst)
	if err := root.Link(rel, tmp); err == nil {
		if err := ref.putInPlace(func() error { return root.Rename(tmp, dst) }); err != nil {
			root.Remove(tmp)
			return mapNoSpace(err)
		}
		return s.syncDir(dir, ".")
	} else if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.replaceDurably(r.Context(), ref, dir, name, func(f *os.File) error {
		src, err := root.Open(rel)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := io.Copy(f, src); err != nil { // copy_file_range where the kernel has it
			return mapNoSpace(err)
		}
		return nil
	})
}
