package hostcmd

// PartSuffix marks a file still being written: a copy, a backup or a dump
// goes to PATH.migrun-part and is renamed to PATH only once it is complete
// (and verified where the kind verifies it), so that PATH never holds half
// a file. A run that stops midway leaves the part for the next one to
// resume or replace.
const PartSuffix = ".migrun-part"

// PartPath is where file is written before its rename.
func PartPath(file string) string { return file + PartSuffix }
