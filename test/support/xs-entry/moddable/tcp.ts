import { ModelTcp } from './world.js';
export default ModelTcp;
