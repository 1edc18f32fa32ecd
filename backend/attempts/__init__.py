"""Clone attempts beside their step: the preview step (`preview`), stale-attempt recovery (`recovery`) and
the service-only internal route (`routes`). The row and its moves are `backend.records.attempts`; the
`VOICE_CLONE_PROCESS` step is `backend.clone.step`."""
