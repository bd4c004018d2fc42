// Package security holds Concord's transport security and identities: TLS
// material loaded from PEM files, the identity a certificate names, client
// bearer tokens, the principal an HTTP request authenticates as, and a
// development certificate authority for `concord certs init`.
package security
