//! The process's TLS crypto provider. reqwest and object_store are built with rustls and no
//! provider of their own (`rustls-no-provider`, to avoid compiling aws-lc-sys): every
//! client (the CluedIn sink, the storage clients, the SNS confirmation) calls
//! [`install_crypto_provider`] before it is built.

use std::sync::Once;

/// Installs rustls' *ring* crypto provider as the process default (once; a no-op if a
/// provider is already installed).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already the default: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_provider_is_the_default_after_installing_twice() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
