// The replay page's API calls: exports (POST /api/v1/exports, one per
// camera) and evidence locks (POST /api/v1/evidence).
import type { Api } from '../api';

export interface ExportJob { id: string; camera: string; state: string }

export function createExport(api: Api, camera: string, from: number, to: number): Promise<ExportJob> {
  return api.json('POST', '/api/v1/exports', { camera, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
}

export interface EvidenceLock { id: number; cameras: string[]; case_number: string; segments?: number; bytes?: number }

export function createEvidence(api: Api, cameras: string[], from: number, to: number, caseNumber: string, reason: string): Promise<EvidenceLock> {
  return api.json('POST', '/api/v1/evidence', {
    cameras, from: new Date(from).toISOString(), to: new Date(to).toISOString(), case_number: caseNumber, reason,
  });
}
