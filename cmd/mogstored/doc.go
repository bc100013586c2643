// Command mogstored is the MogileFS storage node.
//
// It serves the device directories (devN) under its docroot over HTTP
// (port 7500 by default: GET/HEAD with ranges, PUT, DELETE), rewrites each
// device's usage file every 10 seconds, and answers the side channel
// (port 7501: size, MD5, SHA-1, watch).
//
// Usage:
//
//	mogstored [--config=/etc/mogilefs/mogstored.conf] [--docroot=/var/mogdata]
//	          [--httplisten=0.0.0.0:7500] [--mgmtlisten=0.0.0.0:7501]
//
// Example session:
//
//	$ mkdir -p /var/mogdata/dev1
//	$ mogstored --docroot=/var/mogdata &
//	$ curl -T file http://127.0.0.1:7500/dev1/0/000/000/0000000001.fid
package main
