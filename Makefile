# mogilefs-go — the single entry point for building, testing and running.
GO      ?= go
BIN     := bin
CMDS    := mogilefsd mogstored mogadm mogmount mogdbsetup
PKGS    := ./...
TESTFLAGS ?=

.PHONY: install all build test test-short lint fmt-check vet staticcheck run bench clean deps

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./,$(wildcard $(CMDS:%=cmd/%)))
	@for t in mogupload mogfetch mogdelete mogrename mogfileinfo mogfiledebug moglistkeys moglistfids; do \
		ln -sf mogadm $(BIN)/$$t; done

# The whole suite on a fresh machine: installs what the tests need (as
# root), starts MariaDB on loopback, runs every test with the race detector.
test:
	bash scripts/test.sh

# A quick loop while editing: unit tests only, no MariaDB, no FUSE.
test-short:
	$(GO) test -short $(TESTFLAGS) $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# staticcheck is a tool of the module (go.mod's tool line): same version
# everywhere, fetched through the module proxy on first use.
staticcheck:
	$(GO) tool staticcheck $(PKGS)

lint: fmt-check vet staticcheck

# A local cluster on the embedded SQLite store: tracker, two storage
# nodes, a domain, mounted. Ctrl-C stops it.
run: build
	bash scripts/run.sh

# Installs the binaries, the mount(8) helper for fstab entries of type
# fuse.mogmount, example configs (kept when present) and the systemd units.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin $(DESTDIR)/etc/mogilefs $(DESTDIR)/etc/systemd/system
	install -m 755 $(CMDS:%=$(BIN)/%) $(DESTDIR)$(PREFIX)/bin/
	for t in mogupload mogfetch mogdelete mogrename mogfileinfo mogfiledebug moglistkeys moglistfids; do \
		ln -sf mogadm $(DESTDIR)$(PREFIX)/bin/$$t; done
	sed 's|@BINDIR@|$(PREFIX)/bin|' packaging/mount.fuse.mogmount > $(DESTDIR)/sbin/mount.fuse.mogmount
	chmod 755 $(DESTDIR)/sbin/mount.fuse.mogmount
	for f in packaging/conf/*.conf; do \
		test -e $(DESTDIR)/etc/mogilefs/$$(basename $$f) || install -m 644 $$f $(DESTDIR)/etc/mogilefs/; done
	for f in packaging/systemd/*.service; do \
		sed 's|/usr/local/bin|$(PREFIX)/bin|g' $$f > $(DESTDIR)/etc/systemd/system/$$(basename $$f); done

bench: build
	bash scripts/bench.sh

clean:
	rm -rf $(BIN) tmp
