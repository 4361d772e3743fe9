import { world } from './world.js';
export default world.WiFi;
