package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/node"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// gib renders megabytes as gigabytes, "?" when unknown.
func gib(mb int64) string {
	if mb < 0 {
		return "?"
	}
	return fmt.Sprintf("%.3f", float64(mb)/1024)
}

// check prints the health of every tracker, host and device.
func (c *cmd) check() error {
	w := c.env.Stdout
	fmt.Fprintln(w, "Checking trackers...")
	failed := false
	for _, a := range c.c.Tracker.Addrs() {
		t, err := client.NewTracker([]string{a}, client.Options{RequestTimeout: 5 * time.Second})
		if err == nil {
			_, err = t.Do(c.ctx, "noop", nil)
			t.Close()
		}
		if err != nil {
			failed = true
			fmt.Fprintf(w, "  %s ... FAILED: %v\n", a, err)
		} else {
			fmt.Fprintf(w, "  %s ... OK\n", a)
		}
	}
	hosts, err := c.c.Tracker.Hosts(c.ctx)
	if err != nil {
		return err
	}
	devs, err := c.c.Tracker.Devices(c.ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nChecking hosts...")
	nodes := node.New(node.Options{ConnectTimeout: 5 * time.Second, HeaderTimeout: 5 * time.Second, UserAgent: "mogadm"})
	defer nodes.CloseIdle()
	for _, h := range hosts {
		if h.Status != core.HostAlive && h.Status != core.HostReadonly {
			fmt.Fprintf(w, "  [%2d] %s ... skipped (%s)\n", h.ID, h.Name, h.Status)
			continue
		}
		url := "http://" + net.JoinHostPort(h.IP, strconv.Itoa(h.GetPort())) + "/"
		// Any answer will do: the node is up and speaks HTTP.
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		_, err := nodes.Probe(ctx, http.MethodGet, url)
		cancel()
		if err != nil {
			failed = true
			fmt.Fprintf(w, "  [%2d] %s ... FAILED: %v\n", h.ID, h.Name, err)
		} else {
			fmt.Fprintf(w, "  [%2d] %s ... OK\n", h.ID, h.Name)
		}
	}
	fmt.Fprintln(w, "\nChecking devices...")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "host\tdevice\tsize(G)\tused(G)\tfree(G)\tuse% \tob state\tI/O%\t")
	fmt.Fprintln(tw, "----\t------\t-------\t-------\t-------\t-----\t--------\t----\t")
	name := map[int]string{}
	for _, h := range hosts {
		name[h.ID] = h.Name
	}
	var tot, used float64
	for _, d := range devs {
		if d.Status == core.DevDead {
			continue
		}
		pct := "?"
		if d.MBTotal > 0 && d.MBUsed >= 0 {
			tot, used = tot+float64(d.MBTotal), used+float64(d.MBUsed)
			pct = fmt.Sprintf("%.2f", float64(d.MBUsed)*100/float64(d.MBTotal))
		}
		util := d.Utilization
		if util == "" {
			util = "-"
		}
		fmt.Fprintf(tw, "[%d] %s\tdev%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.HostID, name[d.HostID], d.ID,
			gib(d.MBTotal), gib(d.MBUsed), gib(d.MBFree()), pct, d.Observed, util)
	}
	fmt.Fprintln(tw, "\t\t-------\t-------\t-------\t-----\t\t\t")
	pct := 0.0
	if tot > 0 {
		pct = used * 100 / tot
	}
	fmt.Fprintf(tw, "total:\t\t%.3f\t%.3f\t%.3f\t%.2f\t\t\t\n", tot/1024, used/1024, (tot-used)/1024, pct)
	tw.Flush()
	if failed {
		return fmt.Errorf("some trackers or hosts failed the check")
	}
	return nil
}

func (c *cmd) hostArgs(a protocol.Args) {
	for _, f := range []string{"ip", "port", "getport", "altip", "altmask", "status"} {
		c.setIf(a, f, f)
	}
}

func (c *cmd) host() error {
	if err := c.need(1, "host <list|add|modify|mark|delete> ..."); err != nil {
		return err
	}
	sub, rest := c.args[0], c.args[1:]
	switch sub {
	case "list":
		hosts, err := c.c.Tracker.Hosts(c.ctx)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			fmt.Fprintf(c.env.Stdout, "%s [%d]: %s\n", h.Name, h.ID, h.Status)
			fmt.Fprintf(c.env.Stdout, "  IP:       %s:%d\n", h.IP, h.HTTPPort)
			if h.AltIP != "" {
				fmt.Fprintf(c.env.Stdout, "  Alt IP:   %s\n  Alt Mask: %s\n", h.AltIP, h.AltMask)
			}
			if h.HTTPGetPort > 0 {
				fmt.Fprintf(c.env.Stdout, "  GET Port: %d\n", h.HTTPGetPort)
			}
			fmt.Fprintln(c.env.Stdout)
		}
		return nil
	case "add":
		if len(rest) < 1 {
			return usagef("usage: mogadm host add <hostname> [--ip=IP --port=PORT --status=STATE]")
		}
		a := protocol.Args{"host": rest[0], "port": "7500", "status": "down"}
		c.hostArgs(a)
		if a["ip"] == "" {
			addrs, err := net.LookupHost(rest[0])
			if err != nil || len(addrs) == 0 {
				return fmt.Errorf("no --ip given and %s does not resolve", rest[0])
			}
			a["ip"] = addrs[0]
		}
		if _, err := c.do("create_host", a); err != nil {
			return err
		}
		return c.ok("Host %s added.", rest[0])
	case "modify":
		if len(rest) < 1 {
			return usagef("usage: mogadm host modify <hostname> [--ip= --port= --getport= --altip= --altmask= --status=]")
		}
		a := protocol.Args{"host": rest[0]}
		c.hostArgs(a)
		if _, err := c.do("update_host", a); err != nil {
			return err
		}
		return c.ok("Host %s updated.", rest[0])
	case "mark":
		if len(rest) < 2 {
			return usagef("usage: mogadm host mark <hostname> <alive|down|readonly|dead>")
		}
		if _, err := c.do("update_host", protocol.Args{"host": rest[0], "status": rest[1]}); err != nil {
			return err
		}
		return c.ok("Host %s marked %s.", rest[0], rest[1])
	case "delete":
		if len(rest) < 1 {
			return usagef("usage: mogadm host delete <hostname>")
		}
		if _, err := c.do("delete_host", protocol.Args{"host": rest[0]}); err != nil {
			return err
		}
		return c.ok("Host %s deleted.", rest[0])
	}
	return usagef("unknown host command %q", sub)
}

// devid accepts "5" or "dev5".
func devid(s string) string { return strings.TrimPrefix(s, "dev") }

func (c *cmd) device() error {
	if err := c.need(1, "device <list|summary|add|mark|modify|next> ..."); err != nil {
		return err
	}
	sub, rest := c.args[0], c.args[1:]
	switch sub {
	case "list", "summary":
		hosts, err := c.c.Tracker.Hosts(c.ctx)
		if err != nil {
			return err
		}
		devs, err := c.c.Tracker.Devices(c.ctx)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, s := range strings.Split(c.str("status"), ",") {
			if s != "" {
				want[s] = true
			}
		}
		for _, h := range hosts {
			if hn := c.str("hostname"); hn != "" && hn != h.Name {
				continue
			}
			fmt.Fprintf(c.env.Stdout, "%s [%d]: %s\n", h.Name, h.ID, h.Status)
			var tot, used float64
			n := 0
			if sub == "list" {
				fmt.Fprintf(c.env.Stdout, "  %-7s %-10s %10s %10s %10s %7s\n", "", "", "used(G)", "free(G)", "total(G)", "weight(%)")
			}
			for _, d := range devs {
				if d.HostID != h.ID {
					continue
				}
				if d.Status == core.DevDead && !c.flag("all") {
					continue
				}
				if len(want) > 0 && !want[d.Status] {
					continue
				}
				if d.MBTotal > 0 && d.MBUsed >= 0 {
					tot, used = tot+float64(d.MBTotal), used+float64(d.MBUsed)
				}
				n++
				if sub == "list" {
					fmt.Fprintf(c.env.Stdout, "  %-7s %-10s %10s %10s %10s %7d\n", "dev"+strconv.Itoa(d.ID)+":", d.Status,
						gib(d.MBUsed), gib(d.MBFree()), gib(d.MBTotal), d.Weight)
				}
			}
			if sub == "summary" {
				pct := 0.0
				if tot > 0 {
					pct = used * 100 / tot
				}
				fmt.Fprintf(c.env.Stdout, "  devices: %d  total(G): %.3f  used(G): %.3f  free(G): %.3f  used: %.2f%%\n",
					n, tot/1024, used/1024, (tot-used)/1024, pct)
			}
			fmt.Fprintln(c.env.Stdout)
		}
		return nil
	case "add":
		if len(rest) < 2 {
			return usagef("usage: mogadm device add <hostname> <devid> [--status=alive]")
		}
		a := protocol.Args{"hostname": rest[0], "devid": devid(rest[1])}
		c.setIf(a, "status", "state")
		if _, err := c.do("create_device", a); err != nil {
			return err
		}
		return c.ok("Device %s added to %s.", rest[1], rest[0])
	case "mark":
		if len(rest) < 3 {
			return usagef("usage: mogadm device mark <hostname> <devid> <alive|dead|down|drain|readonly>")
		}
		if _, err := c.do("set_state", protocol.Args{"host": rest[0], "device": devid(rest[1]), "state": rest[2]}); err != nil {
			return err
		}
		if rest[2] == "drain" {
			fmt.Fprintln(c.env.Stdout, "Note: drain only stops new files; use 'mogadm rebalance' with from_devices= to move files off.")
		}
		return c.ok("Device %s on %s marked %s.", rest[1], rest[0], rest[2])
	case "modify":
		if len(rest) < 2 {
			return usagef("usage: mogadm device modify <hostname> <devid> [--status=STATE] [--weight=N]")
		}
		if c.fs.Changed("status") {
			if _, err := c.do("set_state", protocol.Args{"host": rest[0], "device": devid(rest[1]), "state": c.str("status")}); err != nil {
				return err
			}
		}
		if c.fs.Changed("weight") {
			if _, err := c.do("set_weight", protocol.Args{"host": rest[0], "device": devid(rest[1]), "weight": c.str("weight")}); err != nil {
				return err
			}
		}
		return c.ok("Device %s on %s updated.", rest[1], rest[0])
	case "next":
		devs, err := c.c.Tracker.Devices(c.ctx)
		if err != nil {
			return err
		}
		max := 0
		for _, d := range devs {
			if d.ID > max {
				max = d.ID
			}
		}
		fmt.Fprintln(c.env.Stdout, max+1)
		return nil
	}
	return usagef("unknown device command %q", sub)
}

func (c *cmd) domainCmd() error {
	if err := c.need(1, "domain <list|add|delete> ..."); err != nil {
		return err
	}
	sub, rest := c.args[0], c.args[1:]
	switch sub {
	case "list":
		return c.classList()
	case "add", "delete":
		if len(rest) < 1 {
			return usagef("usage: mogadm domain %s <domain>", sub)
		}
		name := map[string]string{"add": "create_domain", "delete": "delete_domain"}[sub]
		if _, err := c.do(name, protocol.Args{"domain": rest[0]}); err != nil {
			return err
		}
		return c.ok("Domain %s %s.", rest[0], map[string]string{"add": "created", "delete": "deleted"}[sub])
	}
	return usagef("unknown domain command %q", sub)
}

// classList prints the domain/class table.
func (c *cmd) classList() error {
	doms, err := c.c.Tracker.DomainsWithClasses(c.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, " domain\tclass\tmindevcount\treplpolicy\thashtype")
	fmt.Fprintln(tw, "--------\t-----\t-----------\t----------\t--------")
	type row struct {
		d string
		c core.Class
	}
	var rows []row
	for _, d := range doms {
		for _, cl := range d.Classes {
			rows = append(rows, row{d.Name, cl})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].d != rows[j].d {
			return rows[i].d < rows[j].d
		}
		return rows[i].c.Name < rows[j].c.Name
	})
	for _, x := range rows {
		fmt.Fprintf(tw, " %s\t%s\t%d\t%s\t%s\n", x.d, x.c.Name, x.c.MinDevCount, x.c.ReplPolicy, core.HashName(x.c.HashType))
	}
	return tw.Flush()
}

func (c *cmd) class() error {
	if err := c.need(1, "class <list|add|modify|delete> ..."); err != nil {
		return err
	}
	sub, rest := c.args[0], c.args[1:]
	switch sub {
	case "list":
		return c.classList()
	case "add", "modify":
		if len(rest) < 2 {
			return usagef("usage: mogadm class %s <domain> <class> [--mindevcount=N --replpolicy=P --hashtype=MD5|SHA-1|NONE]", sub)
		}
		a := protocol.Args{"domain": rest[0], "class": rest[1]}
		c.setIf(a, "mindevcount", "mindevcount")
		c.setIf(a, "replpolicy", "replpolicy")
		c.setIf(a, "hashtype", "hashtype")
		name := "create_class"
		if sub == "add" && a["mindevcount"] == "" {
			a["mindevcount"] = "2"
		}
		if sub == "modify" {
			name = "update_class"
		}
		if _, err := c.do(name, a); err != nil {
			return err
		}
		return c.ok("Class %s in domain %s %s.", rest[1], rest[0], map[string]string{"add": "created", "modify": "updated"}[sub])
	case "delete":
		if len(rest) < 2 {
			return usagef("usage: mogadm class delete <domain> <class>")
		}
		if _, err := c.do("delete_class", protocol.Args{"domain": rest[0], "class": rest[1]}); err != nil {
			return err
		}
		return c.ok("Class %s in domain %s deleted.", rest[1], rest[0])
	}
	return usagef("unknown class command %q", sub)
}

func (c *cmd) serverSettings() (map[string]string, error) {
	return c.c.Tracker.ServerSettings(c.ctx)
}

func (c *cmd) settings() error {
	if err := c.need(1, "settings <list|set> ..."); err != nil {
		return err
	}
	switch c.args[0] {
	case "list":
		s, err := c.serverSettings()
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(s))
		for k := range s {
			if !strings.HasPrefix(k, "rebal") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(c.env.Stdout, "%25s = %s\n", k, s[k])
		}
		return nil
	case "set":
		if len(c.args) < 3 {
			return usagef("usage: mogadm settings set <key> <value>")
		}
		if _, err := c.do("set_server_setting", protocol.Args{"key": c.args[1], "value": c.args[2]}); err != nil {
			return err
		}
		return c.ok("Server setting %s set to %s.", c.args[1], c.args[2])
	}
	return usagef("unknown settings command %q", c.args[0])
}

func (c *cmd) slave() error {
	if err := c.need(1, "slave <list|add|modify|delete> ..."); err != nil {
		return err
	}
	s, err := c.serverSettings()
	if err != nil {
		return err
	}
	var keys []string
	for _, k := range strings.Split(s["slave_keys"], ",") {
		if k != "" {
			keys = append(keys, k)
		}
	}
	setKeys := func(ks []string) error {
		_, err := c.do("set_server_setting", protocol.Args{"key": "slave_keys", "value": strings.Join(ks, ",")})
		return err
	}
	sub, rest := c.args[0], c.args[1:]
	switch sub {
	case "list":
		for _, k := range keys {
			parts := strings.SplitN(s["slave_"+k], "|", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			fmt.Fprintf(c.env.Stdout, "%s: dsn=%s username=%s\n", k, parts[0], parts[1])
		}
		return nil
	case "add", "modify":
		if len(rest) < 1 {
			return usagef("usage: mogadm slave %s <key> --dsn=DSN --username=U --password=P", sub)
		}
		k := rest[0]
		v := c.str("dsn") + "|" + c.str("username") + "|" + c.str("password")
		if _, err := c.do("set_server_setting", protocol.Args{"key": "slave_" + k, "value": v}); err != nil {
			return err
		}
		for _, x := range keys {
			if x == k {
				return c.ok("Slave %s updated.", k)
			}
		}
		return setKeys(append(keys, k))
	case "delete":
		if len(rest) < 1 {
			return usagef("usage: mogadm slave delete <key>")
		}
		var left []string
		for _, x := range keys {
			if x != rest[0] {
				left = append(left, x)
			}
		}
		if err := setKeys(left); err != nil {
			return err
		}
		_, err := c.do("set_server_setting", protocol.Args{"key": "slave_" + rest[0], "value": ""})
		return err
	}
	return usagef("unknown slave command %q", sub)
}

func (c *cmd) fsck() error {
	if err := c.need(1, "fsck <start|stop|status|reset|clearlog|printlog|taillog>"); err != nil {
		return err
	}
	switch sub := c.args[0]; sub {
	case "start", "stop", "clearlog":
		if _, err := c.do("fsck_"+sub, nil); err != nil {
			return err
		}
		return c.ok("fsck %s: done.", sub)
	case "reset":
		a := protocol.Args{}
		if c.flag("policy-only") {
			a["policy_only"] = "1"
		}
		c.setIf(a, "startpos", "startpos")
		_, err := c.do("fsck_reset", a)
		return err
	case "status":
		f, err := c.c.Tracker.FsckStatus(c.ctx)
		if err != nil {
			return err
		}
		w := c.env.Stdout
		running := "Stopped"
		if f.Running {
			running = "Running on " + f.Host
		}
		pct := 100.0
		if f.EndFID > 0 {
			pct = float64(f.MaxChecked) * 100 / float64(f.EndFID)
		}
		fmt.Fprintf(w, "    Running: %s\n     Status: %d / %d (%.2f%%)\n", running, f.MaxChecked, f.EndFID, pct)
		if f.Start > 0 {
			fmt.Fprintf(w, "       Time: %ds\n", f.Elapsed())
		}
		ct := "Normal (check policy + files)"
		if f.PolicyOnly {
			ct = "Policy only"
		}
		fmt.Fprintf(w, " Check Type: %s\n\n", ct)
		codes := make([]string, 0, len(f.Counts))
		for k := range f.Counts {
			codes = append(codes, k)
		}
		sort.Strings(codes)
		for _, k := range codes {
			fmt.Fprintf(w, "  [num_%s]: %d\n", k, f.Counts[k])
		}
		return nil
	case "printlog", "taillog":
		var after int64
		for {
			evs, err := c.c.Tracker.FsckLog(c.ctx, after)
			if err != nil {
				return err
			}
			for _, e := range evs {
				dev := ""
				if e.Devid != 0 {
					dev = strconv.Itoa(e.Devid)
				}
				fmt.Fprintf(c.env.Stdout, "%d %s %d %s\n", e.UTime, e.EvCode, e.FID, dev)
				after = e.LogID
			}
			if len(evs) == 0 {
				if sub == "printlog" {
					return nil
				}
				select {
				case <-c.ctx.Done():
					return nil
				case <-time.After(5 * time.Second):
				}
			}
		}
	}
	return usagef("unknown fsck command %q", c.args[0])
}

func (c *cmd) rebalance() error {
	if err := c.need(1, "rebalance <start|stop|status|test|reset|settings|policy>"); err != nil {
		return err
	}
	w := c.env.Stdout
	switch sub := c.args[0]; sub {
	case "start", "stop", "reset":
		r, err := c.do("rebalance_"+sub, nil)
		if err != nil {
			return err
		}
		if r["state"] != "" {
			fmt.Fprintln(w, "Rebalance started.")
		}
		return nil
	case "status":
		s, err := c.serverSettings()
		if err != nil {
			return err
		}
		if s["rebal_host"] != "" {
			fmt.Fprintf(w, "Rebalance is running on %s\n", s["rebal_host"])
		} else {
			fmt.Fprintln(w, "Rebalance is stopped")
		}
		r, err := c.do("rebalance_status", nil)
		if err != nil {
			return err
		}
		for _, kv := range strings.Fields(r["state"]) {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(w, "%25s = %s\n", k, v)
		}
		return nil
	case "test":
		r, err := c.do("rebalance_test", nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Source devices:      %s\nDestination devices: %s\n", r["sdevs"], r["ddevs"])
		return nil
	case "settings":
		s, err := c.serverSettings()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rebal_policy = %s\n", s["rebal_policy"])
		return nil
	case "policy":
		opts := c.str("options")
		if opts == "" && len(c.args) > 1 {
			opts = strings.Join(c.args[1:], " ")
		}
		if opts == "" {
			return usagef(`usage: mogadm rebalance policy --options="from_devices=1 to_hosts=2 ..."`)
		}
		if _, err := c.do("rebalance_set_policy", protocol.Args{"policy": opts}); err != nil {
			return err
		}
		return c.ok("Rebalance policy set.")
	}
	return usagef("unknown rebalance command %q", c.args[0])
}
