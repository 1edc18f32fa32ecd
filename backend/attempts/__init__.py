"""Clone attempts: the model and its transitions (`service`), the `VOICE_CLONE_PROCESS` worker step
(`worker`), the preview step (`preview`), stale-attempt recovery (`recovery`) and the service-only
internal route (`routes`)."""
