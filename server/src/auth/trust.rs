//! The client-certificate trust in force: the cluster client CA and the
//! front-proxy settings. Both can change while the server runs (files
//! re-read, ConfigMap watched); readers take a consistent snapshot per
//! handshake or request, writers swap in a new one.

use std::sync::{Arc, RwLock};

use super::ca::CaBundle;
use super::requestheader::FrontProxy;

/// One consistent view of the trust settings.
#[derive(Debug, Default)]
pub struct TrustState {
    /// The client CA (user = CN, groups = O), if any.
    pub client_ca: Option<Arc<CaBundle>>,
    /// The front-proxy settings, if any.
    pub front_proxy: Option<Arc<FrontProxy>>,
}

/// The swappable trust settings.
#[derive(Debug, Default)]
pub struct Trust {
    state: RwLock<Arc<TrustState>>,
}

impl Trust {
    /// The current settings.
    pub fn current(&self) -> Arc<TrustState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut TrustState)) {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut next = TrustState {
            client_ca: guard.client_ca.clone(),
            front_proxy: guard.front_proxy.clone(),
        };
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// Replaces the client CA.
    pub fn set_client_ca(&self, ca: Option<CaBundle>) {
        self.update(|s| s.client_ca = ca.map(Arc::new));
    }

    /// Replaces the front-proxy settings.
    pub fn set_front_proxy(&self, fp: Option<FrontProxy>) {
        self.update(|s| s.front_proxy = fp.map(Arc::new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ca::tests::TestCa;
    use crate::config::RequestHeaderNames;

    #[test]
    fn snapshots_stay_consistent_while_parts_are_swapped() {
        let trust = Trust::default();
        let before = trust.current();
        let ca = TestCa::new("c");
        trust.set_client_ca(Some(ca.bundle()));
        trust.set_front_proxy(Some(FrontProxy {
            ca: TestCa::new("fp").bundle(),
            allowed_names: vec![],
            headers: RequestHeaderNames::default(),
        }));
        assert!(before.client_ca.is_none() && before.front_proxy.is_none());
        let now = trust.current();
        assert_eq!(now.client_ca.as_ref().unwrap().pem(), ca.pem.as_bytes());
        assert!(now.front_proxy.is_some());
        trust.set_client_ca(None);
        assert!(trust.current().client_ca.is_none());
        assert!(trust.current().front_proxy.is_some());
    }
}
