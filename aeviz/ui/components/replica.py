"""Behind `aeviz serve`, a page whose replica died reloads itself on the replica the proxy moved it to.

When a replica dies, its browsers reconnect through the proxy to a live replica, which does not know their
session. Streamlit's page then stays as it was, idle: nothing reruns, and a widget inside a fragment (the latent
sliders) does nothing until some full rerun. This invisible component notices the move, because the proxy's
X-Aeviz-Replica header on /_stcore/health changes across a reconnect, and reloads the page: the student lands
on the live replica and loses only the state of the page they were on. Without the proxy (plain `streamlit run`,
or a reconnect to the same replica, whose session resumes) the header does not change and it does nothing.
"""
from __future__ import annotations

import functools
import os

import streamlit as st

KEY = "aeviz_replica_guard"
JS = """
export default function () {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || window.__aevizReplicaGuard) return;
  window.__aevizReplicaGuard = true;
  const replica = () => fetch('_stcore/health', {cache: 'no-store'})
    .then((r) => r.headers.get('x-aeviz-replica')).catch(() => null);
  let home = null, state = app.getAttribute('data-test-connection-state');
  replica().then((r) => { home = r; });
  new MutationObserver(async () => {
    const now = app.getAttribute('data-test-connection-state');
    const back = now === 'CONNECTED' && state !== 'CONNECTED';
    state = now;
    if (back && home) {
      const r = await replica();
      if (r && r !== home) window.location.reload();
    }
  }).observe(app, {attributes: true, attributeFilter: ['data-test-connection-state']});
}
"""


@functools.cache
def _component():
    return st.components.v2.component(KEY, js=JS)


def guard() -> None:
    """Mount the watcher (once per page; it draws nothing) at the foot of the sidebar, on a replica only
    (`aeviz serve` sets AEVIZ_REPLICA): every component in a page adds to the cost of each of its widgets on every
    rerun (Streamlit presents each component's state whenever a widget reads the session state), and a single
    server has no other replica to move to."""
    if not os.environ.get("AEVIZ_REPLICA"):
        return
    with st.sidebar:
        _component()(key=KEY)
