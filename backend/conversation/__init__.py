"""What conversation runtimes use to speak in a reflection's voice: `pipecat_tts` (the `pipecat` extra)."""
