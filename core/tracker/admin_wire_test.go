package tracker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

func TestWireDomainsAndClasses(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Tune: noJobs})
	w.expect("get_domains", "OK domains=0")
	w.expect("create_domain domain=photos", "OK domain=photos")
	w.code("create_domain domain=photos", "domain_exists")
	w.code("create_domain", "no_domain")
	w.code("create_domain domain="+strings.Repeat("d", 256), "bad_params")
	w.expect("create_class domain=photos&class=thumbs&mindevcount=3", "OK class=thumbs&domain=photos&mindevcount=3")
	w.code("create_class domain=photos&class=x", "invalid_mindevcount")
	w.code("create_class domain=photos&class=thumbs&mindevcount=2", "class_exists")
	w.code("create_class domain=photos&class=x&mindevcount=0", "invalid_mindevcount")
	w.code("create_class domain=photos&class=x&mindevcount=2&replpolicy=Bogus()", "invalid_replpolicy")
	w.code("create_class domain=photos&class=x&mindevcount=2&hashtype=CRC", "invalid_hashtype")
	w.code("create_class domain=nope&class=x&mindevcount=2", "domain_not_found")
	w.code("create_class domain=photos", "no_class")
	w.expect("update_class domain=photos&class=thumbs&mindevcount=2&hashtype=MD5&replpolicy=MultipleDevices()",
		"OK class=thumbs&domain=photos&mindevcount=2")
	w.code("update_class domain=photos&class=nope&mindevcount=2", "class_not_found")
	w.expect("get_domains", "OK domain1=photos&domain1class1hashtype=NONE&domain1class1mindevcount=2&domain1class1name=default&domain1class1replpolicy=MultipleHosts%28%29"+
		"&domain1class2hashtype=MD5&domain1class2mindevcount=2&domain1class2name=thumbs&domain1class2replpolicy=MultipleDevices%28%29&domain1classes=2&domains=1")
	w.code("delete_domain domain=photos", "domain_has_classes")
	w.code("delete_class domain=photos&class=default", "nodel_default_class")
	w.code("delete_class domain=photos&class=nope", "class_not_found")
	w.code("delete_class domain=nope&class=x", "domain_not_found")
	w.expect("delete_class domain=photos&class=thumbs", "OK class=thumbs&domain=photos")
	w.expect("delete_domain domain=photos", "OK domain=photos")
	w.code("delete_domain domain=photos", "domain_not_found")
	w.expect("get_domains", "OK domains=0")
}

// A domain or class holding files is not deleted.
func TestWireDeleteRefusedWithFiles(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	upload(t, w, "d", "k", "one", []byte("x"))
	w.code("delete_class domain=d&class=one", "class_has_files")
	w.code("delete_domain domain=d", "domain_has_files")
}

func TestWireHostsDevicesSettings(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	w.code("create_host host=host1&ip=127.0.0.9&port=7500", "host_exists")
	w.code("create_host host=h3&ip=127.0.0.1&port=7500", "dup")
	w.code("create_host ip=127.0.0.9&port=7500", "no_host")
	w.code("create_host host=h3&port=7500", "no_ip")
	w.code("create_host host=h3&ip=127.0.0.9", "no_port")
	w.code("create_host host=h3&ip=nope&port=7500", "bad_params")
	w.code("create_host host=h3&ip=127.0.0.9&port=x", "bad_params")
	w.code("create_host host=h3&ip=127.0.0.9&port=7500&status=happy", "unknown_state")
	w.code("create_host host=h3&ip=127.0.0.9&port=7500&altmask=zz", "bad_params")
	h := w.ok("create_host host=h3&ip=127.0.0.9&port=7500&status=down&altip=10.0.0.9&altmask=10.0.0.0/8")
	if h["hostid"] != "3" || h["hostname"] != "h3" {
		t.Errorf("create_host = %v", h)
	}
	w.ok("update_host host=h3&port=7600&status=alive")
	w.code("update_host host=nope&port=1", "host_not_found")
	w.code("update_host host=h3&ip=127.0.0.1", "dup")
	hosts := w.ok("get_hosts")
	if hosts["hosts"] != "3" || hosts["host3_http_port"] != "7600" || hosts["host3_altip"] != "10.0.0.9" || hosts["host3_status"] != "alive" {
		t.Errorf("get_hosts = %v", hosts)
	}
	w.code("create_device hostname=nope&devid=9", "unknown_host")
	w.code("create_device hostid=99&devid=9", "unknown_hostid")
	w.code("create_device devid=9", "bad_args")
	w.code("create_device hostname=h3&devid=x", "invalid_devid")
	w.code("create_device hostname=h3&devid=1", "existing_devid")
	w.code("create_device hostname=h3&devid=9&state=weird", "invalid_state")
	w.ok("create_device hostname=h3&devid=9&state=alive")
	w.code("delete_host host=h3", "host_not_empty")
	w.code("delete_host host=nope", "unknown_host")

	w.code("set_state host=h3&device=9", "bad_params")
	w.code("set_state host=h3&device=99&state=down", "no_device")
	w.code("set_state host=host1&device=9&state=down", "host_mismatch")
	w.expect("set_state host=h3&device=9&state=dead", "OK ")
	w.code("set_state host=h3&device=9&state=alive", "state_too_high")
	w.code("set_weight host=h3&device=9&weight=x", "bad_params")
	w.expect("set_weight host=host1&device=1&weight=50", "OK ")
	devs := w.ok("get_devices")
	// Our nodes refuse a body whose Content-MD5 does not match: the
	// monitor's MD5 probe found that out.
	if devs["devices"] != "3" || devs["dev3_devid"] != "9" || devs["dev3_status"] != "dead" || devs["dev1_weight"] != "50" || devs["dev1_reject_bad_md5"] != "1" {
		t.Errorf("get_devices = %v", devs)
	}
	if one := w.ok("get_devices devid=9"); one["devices"] != "1" || one["dev1_devid"] != "9" {
		t.Errorf("get_devices devid=9 = %v", one)
	}

	w.expect("set_server_setting key=skip_devcount&value=yes", "OK ")
	w.expect("server_setting key=skip_devcount", "OK key=skip_devcount&value=1")
	w.code("set_server_setting key=skip_devcount&value=maybe", "invalid_format")
	w.code("set_server_setting key=memcache_ttl&value=-1", "invalid_format")
	w.code("set_server_setting key=zone_a&value=nonsense", "invalid_format")
	w.code("set_server_setting key=fsck_checksum&value=CRC", "invalid_format")
	w.expect("set_server_setting key=fsck_checksum&value=MD5", "OK ")
	w.expect("set_server_setting key=slave_a&value=dsn", "OK ")
	w.expect("server_setting key=slave_version", "OK key=slave_version&value=1")
	w.code("set_server_setting key=nosuch_setting&value=1", "not_writable")
	w.code("set_server_setting value=1", "no_key")
	w.code("server_setting", "no_key")
	w.expect("set_server_setting key=skip_devcount", "OK ") // no value: removed
	w.expect("server_setting key=skip_devcount", "OK key=skip_devcount&value=")
	if all := w.ok("server_settings"); all["key_count"] == "" || !strings.Contains(protocolLine(all), "fsck_checksum") {
		t.Errorf("server_settings = %v", all)
	}
	w.expect("clear_cache a=1", "OK a=1")
	w.expect("do_monitor_round", "OK ")
	w.expect("noop", "OK ")
	w.expect("test", "OK ")
	w.code("test crash=1", "failure")
	w.code("sleep duration=x", "bad_params")
	w.expect("sleep duration=0", "OK ")
	w.expect("replicate_now", "OK count=0")
}

// Devices that their nodes say share a disk (two nodes on one machine,
// as here) count once in get_space, the figure df shows.
func TestWireGetSpaceCountsDisksOnce(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	var sp map[string]string
	waitFor(t, "both devices measured", func() bool {
		sp = w.ok("get_space")
		return sp["devices"] == "2"
	})
	devs := w.ok("get_devices")
	if sp["filesystems"] != "1" || sp["total_mb"] != devs["dev1_mb_total"] {
		t.Errorf("get_space = %v; want one file system of %s MB (get_devices %v)", sp, devs["dev1_mb_total"], devs)
	}
}

// A domain, class or device just added through one tracker is known to
// another at once, not only after its next monitor round: clients send
// one request to one tracker and the next to another (a mount's
// create_close reached a tracker that did not know the device yet and
// got bogus_args; a mkdir in a new domain got unreg_domain).
func TestConfigAddedThroughAnotherTracker(t *testing.T) {
	c, w1 := startWire(t, clustertest.Options{Domain: "test"})
	_, addr2 := c.StartTracker(func(cfg *tracker.Config) { cfg.MonitorInterval = time.Hour })
	w2 := dialWire(t, addr2)
	w2.code("create_open domain=fresh&key=k&class=new", "unreg_domain")
	w1.ok("create_domain domain=fresh")
	w2.code("create_open domain=fresh&key=k&class=new", "unreg_class")
	w1.ok("create_class domain=fresh&class=new&mindevcount=1")
	o := w2.ok("create_open domain=fresh&key=k&class=new")
	// A device registered through tracker 1 after the upload opened:
	// tracker 2 now knows it (the upload was not sent there, hence
	// invalid_destdev rather than bogus_args, the answer for a device
	// no tracker knows).
	w1.ok("create_host host=late&ip=127.0.0.9&port=7500")
	w1.ok("create_device hostname=late&devid=9")
	path := fmt.Sprintf("http://127.0.0.9:7500/dev9/0/000/000/%010s.fid", o["fid"])
	w2.code(fmt.Sprintf("create_close domain=fresh&key=k&fid=%s&devid=9&path=%s&size=0", o["fid"], path), "invalid_destdev")
	w2.code(fmt.Sprintf("create_close domain=fresh&key=k&fid=%s&devid=99&path=%s&size=0", o["fid"], path), "bogus_args")
}
