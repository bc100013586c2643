// Command mogmount mounts a MogileFS cluster as a directory tree:
// /<mountpoint>/<domain>/<key>, where "/" in keys makes subdirectories.
//
// Usage:
//
//	mogmount [--trackers=h1:7001,h2:7001] [options] MOUNTPOINT
//	mogmount TRACKERS MOUNTPOINT [-o opt,opt=value,...]     (fstab style)
//
// fstab example:
//
//	10.0.0.1:7001,10.0.0.2:7001  /mnt/mogile  fuse.mogmount  allow_other,class=thumbs,_netdev  0 0
//
// Example session:
//
//	$ mogmount --trackers=127.0.0.1:7001 /mnt/mogile &
//	$ cp -r photos /mnt/mogile/images/
//	$ rsync -a /srv/www/ /mnt/mogile/www/
//	$ kill %1        # unmounts cleanly
package main
