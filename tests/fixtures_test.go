package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// exchange is one recorded request and reply of the original 2.73.
type exchange struct {
	Seq      int    `json:"seq"`
	Proto    string `json:"proto"`
	Label    string `json:"label"`
	Request  string `json:"request"`
	Response string `json:"response"`
}

func loadExchanges(t *testing.T, name string) []exchange {
	t.Helper()
	f, err := os.Open("testdata/fixtures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e exchange
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, e)
	}
	return out
}

// volatileKey matches reply keys whose values depend on the run (ports,
// space, times, fids, paths, placement), compared by presence only.
var volatileKey = regexp.MustCompile(`port|mb_|time|asof|utilization|reject_bad_md5|observed_state|^path|devpath|fid$|^devid$|max_logid|nexttry`)

// normalize turns a reply line into a sorted multiset of key=value with
// record numbers stripped from keys and volatile values blanked.
func normalize(line string, ignore *regexp.Regexp) string {
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "ERR") {
		f := strings.Fields(line)
		return strings.Join(f[:min(len(f), 3)], " ")
	}
	args, err := protocol.ParseReply(line)
	if err != nil {
		return "unparsable: " + line
	}
	digits := regexp.MustCompile(`\d+`)
	var parts []string
	for k, v := range args {
		if ignore != nil && ignore.MatchString(k) {
			continue
		}
		nk := digits.ReplaceAllString(k, "#")
		if volatileKey.MatchString(nk) {
			v = "*"
		}
		parts = append(parts, nk+"="+v)
	}
	sort.Strings(parts)
	return "OK " + strings.Join(parts, "&")
}

// replayer drives our cluster through a recorded session.
type replayer struct {
	t      *testing.T
	c      *clustertest.Cluster
	conn   net.Conn
	r      *bufio.Reader
	fids   map[string]string   // recorded fid -> our fid
	dests  map[string][]string // our fid -> [devid, path] pairs from create_open
	jobsOn bool
	portOf map[string]int // node IP -> port
}

func (p *replayer) send(raw string) []string {
	p.t.Helper()
	p.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(p.conn, raw); err != nil {
		p.t.Fatal(err)
	}
	var lines []string
	want := strings.Count(raw, "\n")
	bang := strings.HasPrefix(raw, "!")
	for len(lines) < want || bang {
		l, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("reading reply to %q: %v", raw, err)
		}
		lines = append(lines, l)
		if bang && l == ".\r\n" {
			break
		}
	}
	return lines
}

var fidPathRE = regexp.MustCompile(`/dev(\d+)/\d/\d{3}/\d{3}/(\d{10})\.fid`)

// rewrite adapts a recorded tracker request to this cluster: node ports,
// and the fids and destinations our tracker handed out.
func (p *replayer) rewrite(req string) string {
	a := req
	for ip, port := range p.portOf {
		a = strings.ReplaceAll(a, "ip="+ip+"&port=7500", "ip="+ip+"&port="+strconv.Itoa(port))
	}
	if strings.HasPrefix(a, "create_close ") {
		line := strings.TrimRight(a, "\r\n")
		r, _ := protocol.ParseRequest(line)
		ours, ok := p.fids[r.Args["fid"]]
		if !ok {
			return a // a bogus close: leave it as recorded
		}
		r.Args["fid"] = ours
		d := p.dests[ours]
		r.Args["devid"], r.Args["path"] = d[0], d[1]
		for i := 0; i+1 < len(d); i += 2 {
			if d[i] == r.Args["devid"] {
				r.Args["path"] = d[i+1]
			}
		}
		return protocol.RequestLine("create_close", r.Args)
	}
	return a
}

// noteOpen records the fid and destinations of our create_open reply.
func (p *replayer) noteOpen(recorded, ours string) {
	ra, _ := protocol.ParseReply(strings.TrimRight(recorded, "\r\n"))
	oa, err := protocol.ParseReply(strings.TrimRight(ours, "\r\n"))
	if err != nil {
		return
	}
	p.fids[ra["fid"]] = oa["fid"]
	var d []string
	if oa["devid"] != "" {
		d = []string{oa["devid"], oa["path"]}
	}
	for i := 1; oa["devid_"+strconv.Itoa(i)] != ""; i++ {
		d = append(d, oa["devid_"+strconv.Itoa(i)], oa["path_"+strconv.Itoa(i)])
	}
	// The recorded close used the recorded devid; ours uses the first
	// destination unless the recorded devid is among ours.
	rd := ra["devid"]
	if rd == "" {
		rd = ra["devid_1"]
	}
	for i := 0; i+1 < len(d); i += 2 {
		if d[i] == rd {
			d[0], d[1], d[i], d[i+1] = d[i], d[i+1], d[0], d[1]
		}
	}
	p.dests[oa["fid"]] = d
}

// http replays a recorded storage-node request against our node and
// returns our status line and body.
func (p *replayer) http(e exchange) (status, body string) {
	p.t.Helper()
	req := e.Request
	head, payload, _ := strings.Cut(req, "\r\n\r\n")
	m := regexp.MustCompile(`Host: ([\d.]+):\d+`).FindStringSubmatch(head)
	ip := m[1]
	// Map the recorded fid path to ours.
	if fm := fidPathRE.FindStringSubmatch(head); fm != nil {
		recFid := strings.TrimLeft(fm[2], "0")
		if ours, ok := p.fids[recFid]; ok {
			devid := fm[1]
			if strings.HasPrefix(head, "PUT") {
				devid = p.dests[ours][0]
				u := p.dests[ours][1]
				ip = regexp.MustCompile(`http://([\d.]+):`).FindStringSubmatch(u)[1]
			}
			n, _ := strconv.ParseInt(ours, 10, 64)
			head = strings.Replace(head, fm[0], fmt.Sprintf("/dev%s/%s", devid, fidPathRE.FindString(fmt.Sprintf("/dev%s/0/000/000/%010d.fid", devid, n))[len("/dev"+devid+"/"):]), 1)
		}
	}
	c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(p.portOf[ip])))
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, head+"\r\n\r\n"+payload)
	resp, _ := io.ReadAll(c)
	h, b, _ := strings.Cut(string(resp), "\r\n\r\n")
	status, _, _ = strings.Cut(h, "\r\n")
	return status, b
}

func TestRecordedExchanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	runs := map[string]string{"sqlite": ""}
	if dsns := storetest.DSNs(t); dsns["mysql"] != "" {
		runs["mysql"] = dsns["mysql"]
	}
	for backend, dsn := range runs {
		t.Run(backend, func(t *testing.T) {
			replay(t, "tracker-"+backend+".jsonl", dsn)
		})
	}
}

func replay(t *testing.T, fixture, dsn string) {
	// Tracker A answers the session with its background jobs off, so that
	// nothing is replicated before the recording says it was; tracker B,
	// on the same database, starts them when the recording waits for
	// replication.
	c := clustertest.Start(t, clustertest.Options{DSN: dsn, Layout: [][]int{{1, 2}, {3}}, NoRegister: true,
		Tune: func(cfg *tracker.Config) { cfg.NoJobs = true }})
	conn, err := net.Dial("tcp", c.TrackerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &replayer{t: t, c: c, conn: conn, r: bufio.NewReader(conn), fids: map[string]string{}, dests: map[string][]string{}, portOf: map[string]int{}}
	for _, n := range c.Nodes {
		p.portOf[n.IP] = n.Port
	}
	ex := loadExchanges(t, fixture)
	for i, e := range ex {
		label := fmt.Sprintf("#%d %s", e.Seq, e.Label)
		if e.Proto == "http" {
			status, body := p.http(e)
			wantStatus, _, _ := strings.Cut(e.Response, "\r\n")
			_, wantBody, _ := strings.Cut(e.Response, "\r\n\r\n")
			if code(status) != code(wantStatus) {
				t.Errorf("%s: status %q; original %q", label, status, wantStatus)
			}
			if strings.HasPrefix(e.Request, "GET") && body != wantBody {
				t.Errorf("%s: body %q; original %q", label, body, wantBody)
			}
			continue
		}
		if strings.Contains(e.Label, "poll") {
			if !p.jobsOn && strings.Contains(e.Label, "replication") {
				c.StartTracker(nil)
				p.jobsOn = true
			}
			if i+1 < len(ex) && strings.Contains(ex[i+1].Label, "poll") {
				continue // only the last poll's answer is the one to wait for
			}
			want := normalize(e.Response, nil)
			deadline := time.Now().Add(30 * time.Second)
			for {
				got := p.send(p.rewrite(e.Request))
				if normalize(got[0], nil) == want || time.Now().After(deadline) {
					if normalize(got[0], nil) != want {
						t.Errorf("%s: never got %s\n last: %s", label, want, normalize(got[0], nil))
					}
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		got := p.send(p.rewrite(e.Request))
		switch {
		case strings.HasPrefix(e.Request, "!"):
			checkBang(t, label, e, got)
		case strings.HasPrefix(e.Request, "create_open") && strings.HasPrefix(got[0], "OK"):
			p.noteOpen(e.Response, got[0])
			fallthrough
		default:
			wantLines := strings.SplitAfter(e.Response, "\r\n")
			for j, g := range got {
				var ignore *regexp.Regexp
				switch {
				case strings.HasPrefix(e.Request, "file_debug"):
					// Queue rows and copies depend on replication timing.
					ignore = regexp.MustCompile(`^replqueue_|^devpath_|^devids$`)
				case strings.HasPrefix(e.Request, "create_open") && strings.Contains(e.Request, "multi_dest=1") && strings.HasPrefix(e.Response, "OK"):
					// How many destinations depends on what the monitor had
					// seen; check the shape instead.
					ignore = regexp.MustCompile(`^(devid|path)_\d+$|^dev_count$`)
					checkMultiDest(t, label, g)
				}
				if w := normalize(wantLines[j], ignore); normalize(g, ignore) != w {
					t.Errorf("%s:\n request  %q\n ours     %s\n original %s", label, strings.TrimSpace(e.Request), normalize(g, ignore), w)
				}
			}
		}
	}
}

func code(status string) string {
	f := strings.Fields(status)
	if len(f) < 2 {
		return status
	}
	return f[1]
}

// checkBang compares admin command output by shape.
func checkBang(t *testing.T, label string, e exchange, got []string) {
	want := strings.SplitAfter(strings.TrimSuffix(e.Response, ""), "\r\n")
	if got[len(got)-1] != ".\r\n" {
		t.Errorf("%s: no terminating dot: %q", label, got)
	}
	switch strings.TrimSpace(e.Request) {
	case "!version":
		if got[0] != want[0] {
			t.Errorf("%s: %q; original %q", label, got[0], want[0])
		}
	case "!stats":
		for i := 0; i < 4; i++ {
			g, _, _ := strings.Cut(got[i], " ")
			w, _, _ := strings.Cut(want[i], " ")
			if g != w {
				t.Errorf("%s: line %d is %q; original %q", label, i, got[i], want[i])
			}
		}
	case "!jobs":
		for _, job := range []string{"delete", "fsck", "job_master", "monitor", "queryworker", "reaper", "replicate"} {
			if !strings.Contains(strings.Join(got, ""), job+" count ") {
				t.Errorf("%s: no %s line", label, job)
			}
		}
	}
}

// checkMultiDest checks a multi_dest create_open reply: dev_count
// destinations, each with a devid and a path.
func checkMultiDest(t *testing.T, label, line string) {
	a, err := protocol.ParseReply(strings.TrimRight(line, "\r\n"))
	if err != nil {
		t.Errorf("%s: %v", label, err)
		return
	}
	n, _ := strconv.Atoi(a["dev_count"])
	if n < 1 || n > 3 {
		t.Errorf("%s: dev_count=%q", label, a["dev_count"])
	}
	for i := 1; i <= n; i++ {
		if a["devid_"+strconv.Itoa(i)] == "" || !strings.HasPrefix(a["path_"+strconv.Itoa(i)], "http://") {
			t.Errorf("%s: destination %d incomplete in %v", label, i, a)
		}
	}
}
