// The cameras page (#/cameras).
import { stub } from './stub';

export const mount = stub('cameras');
