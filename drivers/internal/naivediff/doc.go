// Package naivediff is Docker's "naive diff" for drivers that cannot tar a
// layer's own directory: the layer is mounted and compared with its
// parent, mounted too, and the stream is what differs. It is slower than
// a native diff (it walks both trees) but right whatever the driver keeps
// on disk.
package naivediff
