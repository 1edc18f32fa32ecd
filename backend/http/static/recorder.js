// A microphone recording as one WebM/Opus file (what browsers record natively; voicegate decodes it).

const TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus"];

export class Recorder {
  constructor() {
    this.recorder = null;
    this.stream = null;
    this.chunks = [];
    this.startedAt = 0;
  }

  get recording() {
    return this.recorder !== null;
  }

  get seconds() {
    return this.recording ? (performance.now() - this.startedAt) / 1000 : 0;
  }

  /** Ask for the microphone and start; throws an Error whose message says what went wrong. */
  async start() {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      throw new Error("This browser cannot record audio here; choose a file instead.");
    }
    try {
      // Raw input: the browser's noise suppression and gain control would change the voice being cloned.
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
      throw new Error(
        denied
          ? "The microphone is blocked. Allow it for this page, or choose a file instead."
          : "No microphone was found. Connect one, or choose a file instead.",
      );
    }
    const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    this.chunks = [];
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : {});
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size > 0) this.chunks.push(event.data);
    });
    this.recorder.start();
    this.startedAt = performance.now();
  }

  /** Stop and return the recording as a File. */
  stop() {
    const recorder = this.recorder;
    return new Promise((resolve) => {
      recorder.addEventListener(
        "stop",
        () => {
          const type = recorder.mimeType || "audio/webm";
          const extension = type.startsWith("audio/ogg") ? "ogg" : "webm";
          for (const track of this.stream.getTracks()) track.stop();
          this.recorder = null;
          this.stream = null;
          resolve(new File(this.chunks, `recording.${extension}`, { type }));
        },
        { once: true },
      );
      recorder.stop();
    });
  }
}
