// The audit page (#/audit).
import { stub } from './stub';

export const mount = stub('audit');
