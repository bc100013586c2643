// Command mogadm administers a MogileFS cluster with the original's
// command syntax, and carries the MogileFS-Utils file tools: called (or
// symlinked) as mogupload, mogfetch, mogdelete, mogrename, mogfileinfo,
// mogfiledebug, moglistkeys or moglistfids it behaves as that tool.
//
// Example session:
//
//	$ mogadm --trackers=127.0.0.1:7001 host add sto1 --ip=10.0.0.11 --port=7500 --status=alive
//	$ mogadm device add sto1 1
//	$ mogadm domain add photos
//	$ mogadm class add photos thumbs --mindevcount=2
//	$ mogadm check
//	$ mogupload --trackers=127.0.0.1:7001 --domain=photos --key=a.jpg --file=a.jpg
package main
