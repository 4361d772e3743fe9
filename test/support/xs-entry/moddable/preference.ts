import { preference } from './world.js';
export default preference;
