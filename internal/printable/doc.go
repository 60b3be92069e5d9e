// Package printable makes strings that came from messages safe to print
// to a terminal or write into a summary: control characters (escape
// sequences among them) and invalid UTF-8 are escaped, and long strings
// are cut, saying how long they were.
package printable
