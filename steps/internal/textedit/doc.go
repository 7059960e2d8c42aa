// Package textedit edits configuration files as text, keeping every byte
// it does not mean to change: the lines with their own terminators, the
// key-value edit that rewrites only the assignments of keys whose value
// changes, in the formats migrun's kinds edit (shell variables as the oVirt
// engine reads them, Java properties, ini), and the unified diff a dry run
// shows. It knows no step kind and reads no host: the kinds read the file,
// hand its text here and write the result back.
package textedit
