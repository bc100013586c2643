package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Domains returns every domain.
func (s *Store) Domains(ctx context.Context) ([]core.Domain, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dmid, namespace FROM domain ORDER BY dmid`)
	if err != nil {
		return nil, wrap("list domains", err)
	}
	defer rows.Close()
	var out []core.Domain
	for rows.Next() {
		var d core.Domain
		var name sql.NullString
		if err := rows.Scan(&d.ID, &name); err != nil {
			return nil, wrap("list domains", err)
		}
		d.Name = nullStr(name)
		out = append(out, d)
	}
	return out, wrap("list domains", rows.Err())
}

// Classes returns every stored class row (the implicit default classes
// without a row are not included).
func (s *Store) Classes(ctx context.Context) ([]core.Class, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dmid, classid, classname, mindevcount, hashtype, replpolicy FROM class ORDER BY dmid, classid`)
	if err != nil {
		return nil, wrap("list classes", err)
	}
	defer rows.Close()
	var out []core.Class
	for rows.Next() {
		var c core.Class
		var name, pol sql.NullString
		var ht sql.NullInt64
		if err := rows.Scan(&c.DomainID, &c.ID, &name, &c.MinDevCount, &ht, &pol); err != nil {
			return nil, wrap("list classes", err)
		}
		c.Name, c.ReplPolicy, c.HashType = nullStr(name), nullStr(pol), int(nullInt(ht, 0))
		out = append(out, c)
	}
	return out, wrap("list classes", rows.Err())
}

// CreateDomain adds a domain with the next free dmid.
func (s *Store) CreateDomain(ctx context.Context, name string) (int, error) {
	var id int
	err := s.tx(ctx, "create domain", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM domain WHERE namespace=?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(dmid),0)+1 FROM domain`).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO domain (dmid, namespace) VALUES (?, ?)`, id, name)
		if isDup(err) {
			return ErrExists
		}
		return err
	})
	return id, err
}

// DomainHasFiles reports whether any file is stored in the domain.
func (s *Store) DomainHasFiles(ctx context.Context, dmid int) (bool, error) {
	var x int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM file WHERE dmid=? LIMIT 1`, dmid).Scan(&x)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, wrap("domain has files", err)
}

// DeleteDomain removes a domain and its stored default-class row.
func (s *Store) DeleteDomain(ctx context.Context, dmid int) error {
	return s.tx(ctx, "delete domain", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM class WHERE dmid=? AND classid=0`, dmid); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM domain WHERE dmid=?`, dmid)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// CreateClass stores a new class; the name "default" gets classid 0,
// others MAX(classid)+1 within the domain. It returns the classid.
func (s *Store) CreateClass(ctx context.Context, c core.Class) (int, error) {
	err := s.tx(ctx, "create class", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM class WHERE dmid=? AND classname=?`, c.DomainID, c.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		if c.Name == "default" {
			c.ID = 0
		} else {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(classid),0)+1 FROM class WHERE dmid=?`, c.DomainID).Scan(&c.ID); err != nil {
				return err
			}
			if c.ID > 255 {
				return fmt.Errorf("domain %d has 255 classes, the most the schema allows", c.DomainID)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO class (dmid, classid, classname, mindevcount, hashtype, replpolicy) VALUES (?,?,?,?,?,?)`,
			c.DomainID, c.ID, c.Name, c.MinDevCount, hashArg(c.HashType), policyArg(c.ReplPolicy))
		if isDup(err) {
			return ErrExists
		}
		return err
	})
	return c.ID, err
}

func hashArg(t int) any {
	if t == core.HashNone {
		return nil
	}
	return t
}

func policyArg(p string) any {
	if p == "" {
		return nil
	}
	return p
}

// UpdateClass changes a stored class's mindevcount, hash type and policy.
func (s *Store) UpdateClass(ctx context.Context, c core.Class) error {
	r, err := s.db.ExecContext(ctx, `UPDATE class SET mindevcount=?, hashtype=?, replpolicy=? WHERE dmid=? AND classid=?`,
		c.MinDevCount, hashArg(c.HashType), policyArg(c.ReplPolicy), c.DomainID, c.ID)
	if err != nil {
		return wrap("update class", err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		// MySQL reports 0 rows when nothing changed; check existence.
		var x int
		err := s.db.QueryRowContext(ctx, `SELECT 1 FROM class WHERE dmid=? AND classid=?`, c.DomainID, c.ID).Scan(&x)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		return wrap("update class", err)
	}
	return nil
}

// ClassHasFiles reports whether any file uses the class.
func (s *Store) ClassHasFiles(ctx context.Context, dmid, classid int) (bool, error) {
	var x int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM file WHERE dmid=? AND classid=? LIMIT 1`, dmid, classid).Scan(&x)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, wrap("class has files", err)
}

// DeleteClass removes a class row.
func (s *Store) DeleteClass(ctx context.Context, dmid, classid int) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM class WHERE dmid=? AND classid=?`, dmid, classid)
	return wrap("delete class", err)
}

// Hosts returns every host.
func (s *Store) Hosts(ctx context.Context) ([]core.Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hostid, hostname, status, hostip, http_port, http_get_port, altip, altmask FROM host ORDER BY hostid`)
	if err != nil {
		return nil, wrap("list hosts", err)
	}
	defer rows.Close()
	var out []core.Host
	for rows.Next() {
		var h core.Host
		var name, status, ip, altip, altmask sql.NullString
		var port, getport sql.NullInt64
		if err := rows.Scan(&h.ID, &name, &status, &ip, &port, &getport, &altip, &altmask); err != nil {
			return nil, wrap("list hosts", err)
		}
		h.Name, h.Status, h.IP, h.AltIP, h.AltMask = nullStr(name), nullStr(status), nullStr(ip), nullStr(altip), nullStr(altmask)
		h.HTTPPort, h.HTTPGetPort = int(nullInt(port, 7500)), int(nullInt(getport, 0))
		out = append(out, h)
	}
	return out, wrap("list hosts", rows.Err())
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullIfZero(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// CreateHost adds a host with the next free hostid and returns it.
// ErrExists means the name is taken; a taken IP gives an error that
// IsDuplicate reports.
func (s *Store) CreateHost(ctx context.Context, h core.Host) (int, error) {
	err := s.tx(ctx, "create host", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM host WHERE hostname=?`, h.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(hostid),0)+1 FROM host`).Scan(&h.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO host (hostid, hostname, status, hostip, http_port, http_get_port, altip, altmask) VALUES (?,?,?,?,?,?,?,?)`,
			h.ID, h.Name, h.Status, h.IP, h.HTTPPort, nullIfZero(h.HTTPGetPort), nullIfEmpty(h.AltIP), nullIfEmpty(h.AltMask))
		if isDup(err) {
			return ErrDuplicate
		}
		return err
	})
	return h.ID, err
}

// ErrDuplicate: a unique column other than the name (an IP) is taken.
var ErrDuplicate = fmt.Errorf("store: duplicate value: %w", ErrExists)

// UpdateHost writes every field of h (looked up by h.ID).
func (s *Store) UpdateHost(ctx context.Context, h core.Host) error {
	_, err := s.db.ExecContext(ctx, `UPDATE host SET status=?, hostip=?, http_port=?, http_get_port=?, altip=?, altmask=? WHERE hostid=?`,
		h.Status, h.IP, h.HTTPPort, nullIfZero(h.HTTPGetPort), nullIfEmpty(h.AltIP), nullIfEmpty(h.AltMask), h.ID)
	if isDup(err) {
		return ErrDuplicate
	}
	return wrap("update host", err)
}

// DeleteHost removes a host; ErrExists if it still has devices.
func (s *Store) DeleteHost(ctx context.Context, hostid int) error {
	return s.tx(ctx, "delete host", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM device WHERE hostid=?`, hostid).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM host WHERE hostid=?`, hostid)
		return err
	})
}

// Devices returns every device.
func (s *Store) Devices(ctx context.Context) ([]core.Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT devid, hostid, status, weight, mb_total, mb_used, mb_asof FROM device ORDER BY devid`)
	if err != nil {
		return nil, wrap("list devices", err)
	}
	defer rows.Close()
	var out []core.Device
	for rows.Next() {
		var d core.Device
		var status sql.NullString
		var weight, total, used, asof sql.NullInt64
		if err := rows.Scan(&d.ID, &d.HostID, &status, &weight, &total, &used, &asof); err != nil {
			return nil, wrap("list devices", err)
		}
		d.Status = nullStr(status)
		d.Weight = int(nullInt(weight, 100))
		d.MBTotal, d.MBUsed, d.MBAsOf = nullInt(total, -1), nullInt(used, -1), nullInt(asof, 0)
		out = append(out, d)
	}
	return out, wrap("list devices", rows.Err())
}

// CreateDevice adds a device; ErrExists if the devid is taken.
func (s *Store) CreateDevice(ctx context.Context, d core.Device) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO device (devid, hostid, status, weight) VALUES (?,?,?,100)`, d.ID, d.HostID, d.Status)
	if isDup(err) {
		return ErrExists
	}
	return wrap("create device", err)
}

// SetDeviceState changes a device's administrative state.
func (s *Store) SetDeviceState(ctx context.Context, devid int, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE device SET status=? WHERE devid=?`, state, devid)
	return wrap("set device state", err)
}

// SetDeviceWeight changes a device's weight.
func (s *Store) SetDeviceWeight(ctx context.Context, devid, weight int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE device SET weight=? WHERE devid=?`, weight, devid)
	return wrap("set device weight", err)
}

// UpdateDeviceUsage records a device's space as observed by a monitor,
// unless a fresher observation (mb_asof within 15 s) is already stored.
func (s *Store) UpdateDeviceUsage(ctx context.Context, devid int, mbTotal, mbUsed int64) error {
	_, err := s.exec(ctx, s.db, `UPDATE device SET mb_total=?, mb_used=?, mb_asof=`+s.now+` WHERE devid=? AND (mb_asof IS NULL OR mb_asof < `+s.now+`-15)`, mbTotal, mbUsed, devid)
	return wrap("update device usage", err)
}

// Settings returns every server setting.
func (s *Store) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT field, value FROM server_settings`)
	if err != nil {
		return nil, wrap("list settings", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrap("list settings", err)
		}
		out[k] = nullStr(v)
	}
	return out, wrap("list settings", rows.Err())
}

// Setting returns one server setting; ok is false when it is not set.
func (s *Store) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	var v sql.NullString
	err = s.db.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE field=?`, key).Scan(&v)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap("get setting", err)
	}
	return nullStr(v), true, nil
}

// SetSetting stores a server setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `REPLACE INTO server_settings (field, value) VALUES (?, ?)`, key, value)
	return wrap("set setting", err)
}

// DeleteSetting removes a server setting.
func (s *Store) DeleteSetting(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM server_settings WHERE field=?`, key)
	return wrap("delete setting", err)
}

// DeleteSettingsPrefix removes every setting whose name starts with prefix.
func (s *Store) DeleteSettingsPrefix(ctx context.Context, prefix string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM server_settings WHERE field LIKE ?`, prefix+"%")
	return wrap("delete settings", err)
}
