// Command mogbench runs the benchmark harness (make bench): a real
// cluster of the built binaries, each figure beside its baseline.
//
//	mogbench --bin=bin --dir=/var/tmp/mogbench [--json=FILE] [--runs=3] [--size=1073741824] [--only=tracker,fuse]
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/bench"
)

// targets are the figures the project aims for (issue: make bench).
var targets = map[string]string{
	"tracker_noop_ops_c16": ">= 50000", "tracker_get_paths_ops_c16": ">= 45000",
	"tracker_get_paths_ops_c16_mysql": ">= 15000", "put_4k_files_per_s_c8": ">= 1100",
	"replicate_4k_files_per_s": ">= 1000", "mogstored_get_ratio": ">= 0.9", "http_put_mib_s": ">= 360",
	"fuse_read_ratio": ">= 0.8", "fuse_write_ratio": ">= 0.7", "fuse_ls_10k_warm_ms": "<= 100",
	"fuse_ls_10k_cold_ms": "<= 1000", "mogmount_peak_rss_mib": "<= 150",
	"scale_get_paths_p99_ms_ratio": "<= 2", "scale_file_info_p99_ms_ratio": "<= 2", "scale_tracker_rss_mib_ratio": "<= 1.5",
}

func main() {
	bench.ServeFilesIfAsked()
	fs := pflag.NewFlagSet("mogbench", pflag.ExitOnError)
	bin := fs.String("bin", "bin", "directory with the built binaries")
	dir := fs.String("dir", "", "scratch directory (default: a new temporary one)")
	jsonOut := fs.String("json", os.Getenv("BENCH_JSON"), "also write every figure as one JSON object here")
	runs := fs.Int("runs", 3, "runs per figure (the median is reported)")
	size := fs.Int64("size", 1<<30, "size of the large-file figures in bytes")
	only := fs.StringSlice("only", nil, "measure only these groups: "+strings.Join(bench.Groups, ", "))
	scaleFiles := fs.Int("scale-files", 0, "files the scale group fills the database with (default 1,000,000 on SQLite, 10,000,000 on MySQL)")
	scaleStore := fs.String("scale-store", "sqlite", "the database the scale group fills: sqlite, or mysql (on MOGILEFS_TEST_MYSQL_DSN's server)")
	peersDisk := fs.String("peers-disk", "dir", "where the peers group keeps every side's data: dir (the scratch directory's file system) or image (a fresh ext4 with its journal, on a loop device)")
	fs.Parse(os.Args[1:])
	if *dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "mogbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mogbench:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	res, err := bench.Run(bench.Config{Bin: *bin, Dir: *dir, MySQL: os.Getenv("MOGILEFS_TEST_MYSQL_DSN"), Runs: *runs, BigSize: *size, Only: *only, ScaleFiles: *scaleFiles, ScaleStore: *scaleStore, PeersDisk: *peersDisk, Log: os.Stderr})
	names := make([]string, 0, len(res))
	for k := range res {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("%-34s %14s  %s\n", "figure", "value", "target")
	for _, k := range names {
		fmt.Printf("%-34s %14.2f  %s\n", k, res[k], targets[k])
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		os.WriteFile(*jsonOut, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mogbench:", err)
		os.Exit(1)
	}
}
