import { timers } from './world.js';
export default timers;
