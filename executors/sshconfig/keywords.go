package sshconfig

// knownKeywords are the ssh_config keywords OpenSSH (up to 10.x) accepts,
// lower case. migrun acts on the ones resolve handles; the others are
// accepted and have no effect, so a file ssh reads is a file migrun reads.
// A keyword outside this set is an error, as in ssh, unless IgnoreUnknown
// names it.
var knownKeywords = setOf(
	// Read by migrun.
	"host", "match", "include", "hostname", "user", "port", "identityfile",
	"identityfile2", "identitiesonly", "certificatefile", "proxycommand",
	"proxyjump", "userknownhostsfile", "globalknownhostsfile", "hashknownhosts",
	"stricthostkeychecking", "hostkeyalias", "ignoreunknown", "connecttimeout",
	"canonicalizehostname", "tag",
	// Accepted, no effect on migrun.
	"addkeystoagent", "addressfamily", "batchmode", "bindaddress", "bindinterface",
	"canonicaldomains", "canonicalizefallbacklocal", "canonicalizemaxdots",
	"canonicalizepermittedcnames", "casignaturealgorithms", "channeltimeout",
	"checkhostip", "ciphers", "clearallforwardings", "compression",
	"connectionattempts", "controlmaster", "controlpath", "controlpersist",
	"dynamicforward", "enableescapecommandline", "enablesshkeysign", "escapechar",
	"exitonforwardfailure", "fingerprinthash", "forkafterauthentication",
	"forwardagent", "forwardx11", "forwardx11timeout", "forwardx11trusted",
	"gatewayports", "gssapiauthentication", "gssapidelegatecredentials",
	"gssapiclientidentity", "gssapikexalgorithms", "gssapikeyexchange",
	"gssapirenewalforcesrekey", "gssapiserveridentity", "gssapitrustdns",
	"hostbasedacceptedalgorithms", "hostbasedauthentication",
	"hostbasedkeytypes", "hostkeyalgorithms", "identityagent", "ipqos",
	"kbdinteractiveauthentication", "kbdinteractivedevices", "kexalgorithms",
	"knownhostscommand", "localcommand", "localforward", "loglevel", "logverbose",
	"macs", "nohostauthenticationforlocalhost", "numberofpasswordprompts",
	"obscurekeystroketiming", "passwordauthentication", "permitlocalcommand",
	"permitremoteopen", "pkcs11provider", "preferredauthentications",
	"proxyusefdpass", "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes",
	"pubkeyauthentication", "refuseconnection", "rekeylimit", "remotecommand",
	"remoteforward", "requesttty", "requiredrsasize", "revokedhostkeys",
	"securitykeyprovider", "sendenv", "serveralivecountmax",
	"serveraliveinterval", "sessiontype", "setenv", "smartcarddevice",
	"stdinnull", "streamlocalbindmask", "streamlocalbindunlink", "syslogfacility",
	"tcpkeepalive", "tunnel", "tunneldevice", "updatehostkeys", "usekeychain",
	"verifyhostkeydns", "versionaddendum", "visualhostkey", "warnweakcrypto",
	"xauthlocation",
	// Deprecated or unsupported in OpenSSH: ssh ignores them with a note.
	"afstokenpassing", "challengeresponseauthentication", "cipher",
	"compressionlevel", "dsaauthentication", "fallbacktorsh",
	"globalknownhostsfile2", "kerberosauthentication", "kerberostgtpassing",
	"keepalive", "protocol", "rhostsauthentication", "rhostsrsaauthentication",
	"rsaauthentication", "skeyauthentication", "tisauthentication",
	"useprivilegedport", "userknownhostsfile2", "useroaming", "usersh",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
