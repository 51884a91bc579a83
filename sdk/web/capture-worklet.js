// Microphone capture on the audio thread: mixes to mono and posts blocks of 2048 samples to the page.
class AculaCapture extends AudioWorkletProcessor {
  constructor() { super(); this.block = new Float32Array(2048); this.n = 0; }
  process(inputs) {
    const channels = inputs[0];
    if (!channels || !channels.length) return true;
    const len = channels[0].length;
    for (let i = 0; i < len; i++) {
      let v = 0;
      for (const ch of channels) v += ch[i];
      this.block[this.n++] = v / channels.length;
      if (this.n === this.block.length) { this.port.postMessage(this.block.slice()); this.n = 0; }
    }
    return true;
  }
}
registerProcessor("acula-capture", AculaCapture);
