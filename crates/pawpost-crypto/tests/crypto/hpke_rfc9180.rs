//! Our HPKE suite checked against RFC 9180 Appendix A (mode_base, DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-256-GCM).
