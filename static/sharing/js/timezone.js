// Tells the portal the viewer's time zone (the tz cookie), so that pages show times in it.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  // Zone names ("America/Argentina/Buenos_Aires") are plain cookie characters: no encoding.
  if (!zone || !/^[A-Za-z0-9_+\/-]+$/.test(zone)) return;
  var cookie = "tz=" + zone;
  if (document.cookie.split("; ").indexOf(cookie) !== -1) return;
  var secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = cookie + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
})();
