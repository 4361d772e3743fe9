// Moddable's `wifi` on the world's clock: joins in 300 ms, 120 ms with the access point's BSSID.
import { fakeWiFi } from '../../../hosts/moddable/fakes.js';
import { timers, wifiLog } from './world.js';
export default fakeWiFi(timers, { joinMs: 300, hintedJoinMs: 120, bssid: '24:0a:c4:12:34:56' }, wifiLog);
