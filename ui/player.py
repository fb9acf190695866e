"""The web app's player script: a scrub bar that spans the shot, a stop at the shot's end, and
autoplay with sound (see :func:`ui.app_view.player_html`, which writes the elements it drives)."""

# The player's shot bar (page-wide, in <head>: HTML set by a handler runs no scripts). Media events
# do not bubble, so the listeners capture them on the document. The bar spans the shot: dragging it
# seeks inside the shot; playback stops at the shot's end, and playing again from there restarts
# the shot; a seek outside the shot (keyboard, media keys) is pulled back into it. Autoplay is with
# sound (the click that picked the shot lets it play); should the browser still refuse, the shot
# plays muted and the user can unmute.
PLAYER_JS = """<script>
(() => {
  const bounds = (v) => [Number(v.dataset.start), Number(v.dataset.end)];
  const fmt = (s) => { s = Math.max(0, s); const m = Math.floor(s / 60);
    const r = (s - 60 * m).toFixed(1).padStart(4, '0'); return m + ':' + r; };
  const sync = (v) => {
    const bar = document.getElementById('ss-scrub'), out = document.getElementById('ss-scrub-t');
    if (!bar || bar.dataset.shot !== v.dataset.shot) return;
    const [a, b] = bounds(v);
    bar.value = Math.min(b, Math.max(a, v.currentTime));
    if (out) out.value = fmt(v.currentTime - a) + ' / ' + fmt(b - a);
  };
  const onVideo = (type, fn) => document.addEventListener(type, (e) => {
    const v = e.target;
    if (v && v.id === 'ss-video') fn(v, e);
  }, true);
  onVideo('loadedmetadata', (v) => {
    const [a] = bounds(v);
    if (Math.abs(v.currentTime - a) > 0.05) v.currentTime = a;
    sync(v);
  });
  onVideo('canplay', (v) => {
    if (v.dataset.autoplayed) return;
    v.dataset.autoplayed = '1';
    if (v.paused) v.play().catch(() => { v.muted = true; v.play().catch(() => {}); });
  });
  // b is the next shot's first frame: stop just before it, on the shot's last frame
  const stop = (v, b) => { v.pause(); v.currentTime = b - 0.001; };
  onVideo('play', (v) => {
    const [a, b] = bounds(v);
    if (v.currentTime >= b - 0.05 || v.currentTime < a - 0.05) v.currentTime = a;
    // timeupdate comes every ~250 ms: watch each animation frame to stop on time
    const tick = () => {
      if (v.paused || !v.isConnected) return;
      if (v.currentTime >= b - 0.02) stop(v, b); else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  onVideo('timeupdate', (v) => {
    const [, b] = bounds(v);
    if (v.currentTime > b + 0.02 || (!v.paused && v.currentTime >= b - 0.02)) stop(v, b);
    sync(v);
  });
  onVideo('seeked', (v) => {
    const [a, b] = bounds(v);
    if (v.currentTime < a - 0.05) v.currentTime = a;
    else if (v.currentTime > b + 0.05) v.currentTime = b;
    sync(v);
  });
  document.addEventListener('input', (e) => {
    const bar = e.target;
    if (!bar || bar.id !== 'ss-scrub') return;
    const v = document.getElementById('ss-video');
    if (v && v.dataset.shot === bar.dataset.shot) v.currentTime = Number(bar.value);
  }, true);
})();
</script>"""
