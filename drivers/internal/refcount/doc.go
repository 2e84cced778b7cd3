// Package refcount counts the mount references of layers and serialises
// the work done on one layer, so that concurrent Gets of a layer make one
// mount and the last Put removes it, while different layers mount in
// parallel.
package refcount
