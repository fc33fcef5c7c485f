import { Controller, Get, Inject } from '@nestjs/common';
import { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { JOB_QUEUE } from './queue.module';

/** Live render nodes: those whose heartbeat is younger than its time-to-live. */
@Controller('v2/nodes')
export class NodesController {
  constructor(@Inject(JOB_QUEUE) private readonly queue: JobQueueRepository) {}

  @Get()
  async list() {
    const nodes = await this.queue.liveNodes();
    return { nodes: nodes.sort((a, b) => a.id.localeCompare(b.id)) };
  }
}
