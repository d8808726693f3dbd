// The live page (#/live).
import { stub } from './stub';

export const mount = stub('live');
